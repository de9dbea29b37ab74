//! One backup or retention setting as the Settings page shows it. The server's state holds these
//! from start-up and a page renders them, so the type sits below both.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSetting {
    pub variable: String,
    pub meaning: String,
    pub value: String,
}
