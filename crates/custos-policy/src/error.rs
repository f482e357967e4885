//! Policy loading errors, each naming the file and, where Cedar gives one, the line.

use std::path::PathBuf;

/// Why a schema or policy set could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A schema or policy file does not parse.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Cedar's explanation.
        message: String,
    },
    /// A policy does not validate against the schema (strict mode).
    #[error("{}:{line}:{column}: {message}", file.display())]
    Validation {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Cedar's explanation.
        message: String,
    },
    /// The directory's files are not one schema plus policies, or ids clash.
    #[error("policy directory: {0}")]
    Layout(String),
}

impl PolicyError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Io { .. } => "policy_io",
            PolicyError::Parse { .. } => "policy_parse",
            PolicyError::Validation { .. } => "policy_invalid",
            PolicyError::Layout(_) => "policy_layout",
        }
    }
}
