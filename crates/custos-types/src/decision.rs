//! How a request was decided.

vocabulary! {
    /// How the request behind an access record was decided.
    pub enum Decision as "decision" {
        /// Answered (for an act recorded before it happens: allowed to happen).
        Allow = "allow",
        /// Refused by authentication, policy, a quota or a detector restriction.
        Deny = "deny",
        /// Failed for another reason (bad input, not found, a store failure).
        Error = "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_those_of_the_records() {
        let words: Vec<&str> = Decision::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(words, ["allow", "deny", "error"]);
        assert!("Allow".parse::<Decision>().is_err());
    }
}
