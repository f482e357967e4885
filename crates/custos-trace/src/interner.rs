//! Dense numbers for strings (blind indexes, staff ids), given in first-seen order, so
//! that the steps of a trace work on small integers and each string is stored once.

use std::collections::HashMap;

/// Strings and their numbers `0, 1, 2, …` in the order first seen.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    names: Vec<String>,
    numbers: HashMap<String, u32>,
}

impl Interner {
    /// The number of `name`, given now if it is new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.numbers.insert(name.to_owned(), n);
        n
    }

    /// The number of `name`, if it was seen.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }

    /// The strings, by number.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}
