//! `[alerts]`: where and when the operator is told that something went wrong.

use super::raw::RawAlerts;
use crate::domain::EmailAddress;

/// Where and when the operator is told that something went wrong.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub email: Option<EmailAddress>,
    pub failure_ratio: f64,
}

pub(super) fn validate(raw: RawAlerts, problems: &mut Vec<String>) -> AlertsConfig {
    let alerts = AlertsConfig {
        email: match raw.email.trim() {
            "" => None,
            e => EmailAddress::parse(e)
                .map_err(|e| problems.push(format!("alerts.email: {e}")))
                .ok(),
        },
        failure_ratio: raw.failure_ratio,
    };
    if !(0.0..=1.0).contains(&alerts.failure_ratio) {
        problems.push(format!(
            "alerts.failure_ratio: {} is not between 0 and 1",
            alerts.failure_ratio
        ));
    }
    alerts
}
