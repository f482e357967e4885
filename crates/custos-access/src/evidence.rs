//! Who made the entries an evidence bundle cites. The bundle's proofs
//! ([`custos_ledger::check_bundle`]) show its entries are in the log; only the entries
//! themselves, read as access records, show they are about the subject the bundle names.

use custos_ledger::CheckedBundle;

use crate::entry;

/// A subject of a verified bundle that its entries do not support. Messages name indexes
/// and the subject (the bundle's own words), never what the entries hold.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// A subject cites an entry the bundle does not hold.
    #[error("entry {index} is not in the bundle")]
    MissingEntry {
        /// The cited index.
        index: u64,
    },
    /// A cited entry is not a Custos access record.
    #[error("entry {index} is not a Custos access record")]
    NotARecord {
        /// The cited index.
        index: u64,
        /// Why it did not decode.
        #[source]
        source: entry::DecodeError,
    },
    /// A cited entry was made by someone else than the subject citing it.
    #[error("entry {index}, cited for {subject}, was made by someone else")]
    OtherMaker {
        /// The cited index.
        index: u64,
        /// The subject that cites it.
        subject: String,
    },
}

impl SubjectError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            SubjectError::MissingEntry { .. } => "evidence_missing_entry",
            SubjectError::NotARecord { source, .. } => source.code(),
            SubjectError::OtherMaker { .. } => "evidence_subject_mismatch",
        }
    }
}

/// Checks that every entry a subject of `checked` cites is a Custos access record made
/// by that subject (the record's `staff_id`).
pub fn check_subjects(checked: &CheckedBundle) -> Result<(), SubjectError> {
    for s in &checked.subjects {
        for &index in &s.entries {
            let bytes = checked
                .entry(index)
                .ok_or(SubjectError::MissingEntry { index })?;
            let record = entry::decode(index, bytes)
                .map_err(|source| SubjectError::NotARecord { index, source })?;
            if record.staff_id != s.subject {
                return Err(SubjectError::OtherMaker {
                    index,
                    subject: s.subject.clone(),
                });
            }
        }
    }
    Ok(())
}
