//! E-mail notification settings: SMTP on the Payer, recipients on each LinkedAccount.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Tag the operator keeps on a member account saying which notifications went out for it,
/// e.g. `Joined=sent@2026-11-24T10:00:00Z`: both `run` and `apply -f` read it, so a notice is
/// never sent twice, not even when the object's status is lost.
pub const NOTIFIED_TAG: &str = "partnerbilling.io/notified";

/// Notifications sent on behalf of a payer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PayerNotifications {
    /// The mail server notifications are sent through.
    pub smtp: SmtpSettings,
}

/// An SMTP server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmtpSettings {
    /// Host name of the mail server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port. Defaults to 587 for `StartTls`, 465 for `Tls` and 25 for `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// `StartTls` (default: plain connection upgraded with STARTTLS, required), `Tls`
    /// (TLS from the first byte) or `None` (no encryption; only for a relay on a trusted
    /// network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// Sender address, e.g. `billing@partner.example`.
    #[schemars(
        length(min = 6, max = 254),
        regex(pattern = r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
    )]
    pub from: String,
    /// A Secret in the Payer's namespace with the SMTP user name and password, if the server
    /// wants a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SmtpCredentials>,
}

/// How the SMTP connection is encrypted.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum SmtpTls {
    #[default]
    StartTls,
    Tls,
    None,
}

impl SmtpSettings {
    pub fn tls(&self) -> SmtpTls {
        self.tls.unwrap_or_default()
    }
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls() {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}

/// A Secret with an SMTP login.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmtpCredentials {
    /// Name of the Secret, in the Payer's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key holding the user name. Defaults to `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key holding the password. Defaults to `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

/// Who hears about an account, and about what.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountNotifications {
    /// E-mail addresses to notify (the account owner, the customer's admins).
    #[schemars(length(min = 1, max = 10))]
    pub recipients: Vec<String>,
    /// Which events: `Joined` (the account was created, or accepted the invitation) and
    /// `Closed`. Defaults to both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationEvent>,
}

impl AccountNotifications {
    pub fn wants(&self, event: NotificationEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}

/// Something an account owner is told about.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationEvent {
    Joined,
    Closed,
}

impl NotificationEvent {
    /// The name used in the spec, the status and the `partnerbilling.io/notified` tag.
    pub fn name(self) -> &'static str {
        match self {
            Self::Joined => "Joined",
            Self::Closed => "Closed",
        }
    }
}

/// A notification that was delivered to the mail server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub event: NotificationEvent,
    pub account_id: String,
    /// When the mail server accepted it (RFC 3339).
    pub sent_at: String,
    pub recipients: Vec<String>,
}
