//! What the gateway asks, and how it becomes a Cedar request with its entities.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use custos_types::Provenance;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema,
};

/// Every action the gateway asks about; the Cedar action ids are [`Action::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Masked view of a customer.
    View,
    /// Reveal the name in full.
    RevealName,
    /// Reveal the phone number in full.
    RevealPhone,
    /// Reveal the email in full.
    RevealEmail,
    /// Reveal the account id in full.
    RevealAccountId,
    /// Search by phone, email or account id.
    Search,
    /// Open a case.
    CreateCase,
    /// Close a case.
    CloseCase,
    /// Create one customer.
    CreateCustomer,
    /// Bulk import customers.
    ImportCustomers,
    /// Bulk export (forbidden by default).
    Export,
    /// Create staff entries and tokens.
    ManageStaff,
    /// Suspend or resume staff.
    SuspendStaff,
    /// Read access records.
    ReadAccess,
    /// Serve the customer portal: read one customer's accesses as the customer sees
    /// them, and issue customer access links.
    CustomerPortal,
    /// Report a contact routed to an agent (the contact centre).
    PostContact,
    /// Ask a second person for fields of a customer on one's own case.
    RequestAccess,
    /// Approve or deny an access request.
    DecideAccess,
    /// Take fields of a customer at once in an emergency, on one's own case.
    BreakGlass,
    /// Call a customer through a privacy number (the number is never shown).
    ContactCall,
    /// Email a customer through the SMTP relay (the address is never shown).
    ContactEmail,
    /// Text a customer through the SMS gateway (the number is never shown).
    ContactSms,
    /// Tell the PBX whom a privacy number bound to an agent leads to.
    ResolveCall,
    /// Provision staff from the identity provider (SCIM): create, change, deprovision.
    ProvisionStaff,
    /// Erase a customer at their request (crypto-shredding).
    EraseCustomer,
    /// Rotate the key-encryption key, and read a rotation's progress.
    RotateKeys,
}

impl Action {
    /// All actions.
    pub const ALL: [Action; 26] = [
        Action::View,
        Action::RevealName,
        Action::RevealPhone,
        Action::RevealEmail,
        Action::RevealAccountId,
        Action::Search,
        Action::CreateCase,
        Action::CloseCase,
        Action::CreateCustomer,
        Action::ImportCustomers,
        Action::Export,
        Action::ManageStaff,
        Action::SuspendStaff,
        Action::ReadAccess,
        Action::CustomerPortal,
        Action::PostContact,
        Action::RequestAccess,
        Action::DecideAccess,
        Action::BreakGlass,
        Action::ContactCall,
        Action::ContactEmail,
        Action::ContactSms,
        Action::ResolveCall,
        Action::ProvisionStaff,
        Action::EraseCustomer,
        Action::RotateKeys,
    ];

    /// The Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::RevealName => "reveal_name",
            Action::RevealPhone => "reveal_phone",
            Action::RevealEmail => "reveal_email",
            Action::RevealAccountId => "reveal_account_id",
            Action::Search => "search",
            Action::CreateCase => "create_case",
            Action::CloseCase => "close_case",
            Action::CreateCustomer => "create_customer",
            Action::ImportCustomers => "import_customers",
            Action::Export => "export",
            Action::ManageStaff => "manage_staff",
            Action::SuspendStaff => "suspend_staff",
            Action::ReadAccess => "read_access",
            Action::CustomerPortal => "customer_portal",
            Action::PostContact => "post_contact",
            Action::RequestAccess => "request_access",
            Action::DecideAccess => "decide_access",
            Action::BreakGlass => "break_glass",
            Action::ContactCall => "contact_call",
            Action::ContactEmail => "contact_email",
            Action::ContactSms => "contact_sms",
            Action::ResolveCall => "resolve_call",
            Action::ProvisionStaff => "provision_staff",
            Action::EraseCustomer => "erase_customer",
            Action::RotateKeys => "rotate_keys",
        }
    }

    /// The field a reveal action shows, for the reveal actions.
    pub fn revealed_field(self) -> Option<&'static str> {
        match self {
            Action::RevealName => Some("name"),
            Action::RevealPhone => Some("phone"),
            Action::RevealEmail => Some("email"),
            Action::RevealAccountId => Some("account_id"),
            _ => None,
        }
    }

    /// The reveal action for a field name, if it is a personal field.
    pub fn reveal(field: &str) -> Option<Action> {
        match field {
            "name" => Some(Action::RevealName),
            "phone" => Some(Action::RevealPhone),
            "email" => Some(Action::RevealEmail),
            "account_id" => Some(Action::RevealAccountId),
            _ => None,
        }
    }
}

/// The caller.
#[derive(Clone, Copy, Debug)]
pub struct Principal<'a> {
    /// Staff id.
    pub id: &'a str,
    /// Role.
    pub role: &'a str,
    /// Org id.
    pub org: &'a str,
    /// Whether the org is a partner company.
    pub partner: bool,
    /// Whether the staff entry is suspended.
    pub suspended: bool,
}

/// What the action is on.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// One customer.
    Customer {
        /// Customer id.
        id: &'a str,
    },
    /// One case.
    Case(CaseContext<'a>),
    /// The vault as a whole.
    Vault,
    /// An access request, to be decided.
    AccessRequest {
        /// Its id.
        id: &'a str,
        /// Who asked.
        requester: &'a str,
        /// The requester's organisation.
        requester_org: &'a str,
    },
}

/// A case: the one a view or reveal names, or the resource of a case action.
#[derive(Clone, Copy, Debug)]
pub struct CaseContext<'a> {
    /// Case id.
    pub id: &'a str,
    /// The case's customer.
    pub customer: &'a str,
    /// The case's assignee.
    pub assignee: &'a str,
    /// Whether it is open.
    pub open: bool,
    /// Who vouches that the customer is in contact.
    pub provenance: Provenance,
}

/// One authorization question.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    /// Who asks.
    pub principal: Principal<'a>,
    /// For what.
    pub action: Action,
    /// On what.
    pub resource: Resource<'a>,
    /// With which case.
    pub case: Option<CaseContext<'a>>,
    /// Whether an approval (or break-glass) in force gives this field of this customer on
    /// this case to the principal (for reveals; `false` for anything else).
    pub granted: bool,
}

/// The request could not be expressed in Cedar (e.g. it does not match the schema).
#[derive(Debug)]
pub(crate) struct Unrepresentable;

fn uid(type_name: &str, id: &str) -> Result<EntityUid, Unrepresentable> {
    let t = EntityTypeName::from_str(type_name).map_err(|_| Unrepresentable)?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

/// The entities of one request, each uid once: Cedar rejects duplicates, and the same
/// customer or case can be both the resource and named by the case context.
struct EntitySet(Vec<Entity>);

impl EntitySet {
    fn add(&mut self, entity: Entity) {
        if !self.0.iter().any(|e| e.uid() == entity.uid()) {
            self.0.push(entity);
        }
    }

    fn customer(&mut self, id: &str) -> Result<EntityUid, Unrepresentable> {
        let customer = uid("Custos::Customer", id)?;
        self.add(Entity::with_uid(customer.clone()));
        Ok(customer)
    }

    /// The case and its customer. The assignee is referenced by uid only: policies
    /// compare it with the principal, and a Staff entity for someone other than the
    /// caller would need attributes (role, org) the gateway does not have at hand.
    fn case(&mut self, c: &CaseContext<'_>) -> Result<EntityUid, Unrepresentable> {
        let case = uid("Custos::Case", c.id)?;
        let attrs = HashMap::from([
            (
                "customer".to_owned(),
                RestrictedExpression::new_entity_uid(self.customer(c.customer)?),
            ),
            (
                "assignee".to_owned(),
                RestrictedExpression::new_entity_uid(uid("Custos::Staff", c.assignee)?),
            ),
            ("open".to_owned(), RestrictedExpression::new_bool(c.open)),
            (
                "provenance".to_owned(),
                RestrictedExpression::new_string(c.provenance.as_str().to_owned()),
            ),
        ]);
        self.add(Entity::new(case.clone(), attrs, HashSet::new()).map_err(|_| Unrepresentable)?);
        Ok(case)
    }
}

impl AccessRequest<'_> {
    /// The Cedar request and its entities, both checked against `schema`. Anything the
    /// schema does not allow (e.g. a case in the context of an action that declares
    /// none) is `Unrepresentable`, which the engine turns into a denial.
    pub(crate) fn to_cedar(self, schema: &Schema) -> Result<(Request, Entities), Unrepresentable> {
        let p = &self.principal;
        let org_uid = uid("Custos::Org", p.org)?;
        let principal_uid = uid("Custos::Staff", p.id)?;
        let mut entities = EntitySet(Vec::new());
        entities.add(
            Entity::new(
                org_uid.clone(),
                HashMap::from([(
                    "partner".to_owned(),
                    RestrictedExpression::new_bool(p.partner),
                )]),
                HashSet::new(),
            )
            .map_err(|_| Unrepresentable)?,
        );
        entities.add(
            Entity::new(
                principal_uid.clone(),
                HashMap::from([
                    (
                        "role".to_owned(),
                        RestrictedExpression::new_string(p.role.to_owned()),
                    ),
                    (
                        "org".to_owned(),
                        RestrictedExpression::new_entity_uid(org_uid),
                    ),
                    (
                        "suspended".to_owned(),
                        RestrictedExpression::new_bool(p.suspended),
                    ),
                ]),
                HashSet::new(),
            )
            .map_err(|_| Unrepresentable)?,
        );
        let resource_uid = match self.resource {
            Resource::Customer { id } => entities.customer(id)?,
            Resource::Case(case) => entities.case(&case)?,
            Resource::Vault => {
                let vault = uid("Custos::Vault", "vault")?;
                entities.add(Entity::with_uid(vault.clone()));
                vault
            }
            Resource::AccessRequest {
                id,
                requester,
                requester_org,
            } => {
                let request = uid("Custos::AccessRequest", id)?;
                let attrs = HashMap::from([
                    (
                        "requester".to_owned(),
                        RestrictedExpression::new_entity_uid(uid("Custos::Staff", requester)?),
                    ),
                    (
                        "requester_org".to_owned(),
                        RestrictedExpression::new_entity_uid(uid("Custos::Org", requester_org)?),
                    ),
                ]);
                entities.add(
                    Entity::new(request.clone(), attrs, HashSet::new())
                        .map_err(|_| Unrepresentable)?,
                );
                request
            }
        };
        let mut context = Vec::new();
        if let Some(c) = self.case {
            let case = entities.case(&c)?;
            context.push((
                "case".to_owned(),
                RestrictedExpression::new_entity_uid(case),
            ));
        }
        if self.granted {
            context.push(("granted".to_owned(), RestrictedExpression::new_bool(true)));
        }
        let context = Context::from_pairs(context).map_err(|_| Unrepresentable)?;
        let action = uid("Custos::Action", self.action.as_str())?;
        let request = Request::new(principal_uid, action, resource_uid, context, Some(schema))
            .map_err(|_| Unrepresentable)?;
        let entities =
            Entities::from_entities(entities.0, Some(schema)).map_err(|_| Unrepresentable)?;
        Ok((request, entities))
    }
}
