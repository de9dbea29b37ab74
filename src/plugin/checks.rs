//! The checks a plugin submit makes before anything reaches HiBob. They are the rules both ways
//! in share, kept with the mapping's encoder (`mapping::checks`), so an export from a webhook is
//! held to them as well.

pub use crate::mapping::checks::{
    cv_url_problem, name_problem, parse_date, problem, valid_email, CvLinks, MAX_NAME_CHARS,
};
