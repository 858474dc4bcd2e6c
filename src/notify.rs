//! E-mail notifications to account owners: the message text (pure), the record of what went
//! out kept on the account itself (the `partnerbilling.io/notified` tag; pure), and sending it
//! over SMTP.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::api::notifications::{NotificationEvent, SmtpSettings, SmtpTls};
use crate::error::Error;
use crate::reconcile::reasons::{INVALID_SPEC, SMTP_FAILED};
use crate::secrets::SecretString;

/// An e-mail to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// What a notification says about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFacts {
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub organization_id: String,
    pub joined_method: String,
}

/// The message for `event`. Pure.
pub fn compose(event: NotificationEvent, from: &str, to: &[String], facts: &AccountFacts) -> Mail {
    let (subject, body) = match event {
        NotificationEvent::Joined => (
            format!(
                "AWS account {} ({}) has joined organization {}",
                facts.name, facts.account_id, facts.organization_id
            ),
            format!(
                "Hello,\n\nthe AWS account below is now a member of organization {org} and is billed through it.\n\n  Account id:    {id}\n  Account name:  {name}\n  Root e-mail:   {email}\n  Joined:        {how}\n\nNext steps:\n  1. Sign in as the root user: open https://console.aws.amazon.com/, choose \"Root user\", enter {email} and use \"Forgot password\" to set a password (new accounts have none).\n  2. Turn on MFA for the root user, then create day-to-day users or use IAM Identity Center.\n  3. Billing for this account is handled by your partner; the account's own billing pages show pro forma figures.\n\nThis message was sent by partner-billing-operator.\n",
                org = facts.organization_id,
                id = facts.account_id,
                name = facts.name,
                email = facts.email,
                how = if facts.joined_method == "INVITED" {
                    "accepted the invitation"
                } else {
                    "created by the organization"
                },
            ),
        ),
        NotificationEvent::Closed => (
            format!(
                "AWS account {} ({}) has been closed",
                facts.name, facts.account_id
            ),
            format!(
                "Hello,\n\nthe AWS account below was closed by organization {org}.\n\n  Account id:    {id}\n  Account name:  {name}\n  Root e-mail:   {email}\n\nWhat this means:\n  - Resources in the account stop and will be deleted; the account is suspended now.\n  - AWS Support can reopen it within 90 days after closure; after that it is gone for good.\n  - Charges already incurred are still billed through the organization.\n\nThis message was sent by partner-billing-operator.\n",
                org = facts.organization_id,
                id = facts.account_id,
                name = facts.name,
                email = facts.email,
            ),
        ),
    };
    Mail {
        from: from.to_string(),
        to: to.to_vec(),
        subject,
        body,
    }
}

/// Where one event's notice stands, as the `partnerbilling.io/notified` tag records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Marked before the mail server was asked, at this time (RFC 3339). Still there after
    /// the attempt only if the operator stopped in between: whether the mail went out is
    /// unknown, and it is not sent again (at most once).
    Sending(String),
    /// The mail server accepted it at this time (RFC 3339).
    Sent(String),
}

/// The value of the `partnerbilling.io/notified` tag: per event, `Event=sent@TIME` or
/// `Event=sending@TIME`, separated by spaces (characters AWS allows in tag values), e.g.
/// `Joined=sent@2026-11-24T10:00:00Z`. Pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifiedTag {
    entries: BTreeMap<String, String>,
}

impl NotifiedTag {
    /// Read a tag value; entries that do not look like `Event=...` are dropped.
    pub fn parse(value: &str) -> Self {
        let entries = value
            .split_whitespace()
            .filter_map(|e| e.split_once('='))
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { entries }
    }

    /// What the tag says about `event`. An entry in an unknown form counts as `Sending`
    /// (something was attempted; never send twice).
    pub fn get(&self, event: NotificationEvent) -> Option<Delivery> {
        let v = self.entries.get(event.name())?;
        Some(match v.split_once('@') {
            Some(("sent", at)) => Delivery::Sent(at.to_string()),
            Some((_, at)) => Delivery::Sending(at.to_string()),
            None => Delivery::Sending(v.clone()),
        })
    }

    pub fn set(&mut self, event: NotificationEvent, delivery: &Delivery) {
        let v = match delivery {
            Delivery::Sending(at) => format!("sending@{at}"),
            Delivery::Sent(at) => format!("sent@{at}"),
        };
        self.entries.insert(event.name().to_string(), v);
    }

    pub fn remove(&mut self, event: NotificationEvent) {
        self.entries.remove(event.name());
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tag value.
    pub fn render(&self) -> String {
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Sends mail. The SMTP implementation is [`SmtpMailer`].
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(
        &self,
        smtp: &SmtpSettings,
        login: Option<(String, SecretString)>,
        mail: &Mail,
    ) -> Result<(), Error>;
}

/// Sends through the SMTP server in the Payer's settings.
pub struct SmtpMailer;

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(
        &self,
        smtp: &SmtpSettings,
        login: Option<(String, SecretString)>,
        mail: &Mail,
    ) -> Result<(), Error> {
        let server = format!("{}:{}", smtp.host, smtp.port());
        let failed = |what: String| {
            Error::retryable(
                SMTP_FAILED,
                format!("sending mail through {server} failed: {what}"),
            )
        };
        let mut builder = match smtp.tls() {
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .map_err(|e| failed(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                .map_err(|e| failed(e.to_string()))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        }
        .port(smtp.port())
        .timeout(Some(std::time::Duration::from_secs(15)));
        if let Some((user, password)) = login {
            builder = builder.credentials(Credentials::new(user, password.expose().to_string()));
        }
        let transport = builder.build();
        let mut message = Message::builder()
            .from(mail.from.parse().map_err(|e| {
                Error::terminal(
                    INVALID_SPEC,
                    format!("notifications.smtp.from {:?}: {e}", mail.from),
                )
            })?)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &mail.to {
            message = message.to(to.parse().map_err(|e| {
                Error::terminal(INVALID_SPEC, format!("notification recipient {to:?}: {e}"))
            })?);
        }
        let message = message
            .body(mail.body.clone())
            .map_err(|e| failed(e.to_string()))?;
        transport
            .send(message)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AccountFacts {
        AccountFacts {
            account_id: "111122223333".into(),
            name: "northwind-prod".into(),
            email: "aws+northwind@example.com".into(),
            organization_id: "o-abc1234567".into(),
            joined_method: "CREATED".into(),
        }
    }

    #[test]
    fn joined_mail_names_the_account_and_the_next_steps() {
        let m = compose(
            NotificationEvent::Joined,
            "billing@partner.example",
            &["ops@northwind.example".into()],
            &facts(),
        );
        assert!(m.subject.contains("111122223333") && m.subject.contains("o-abc1234567"));
        for needle in [
            "111122223333",
            "northwind-prod",
            "aws+northwind@example.com",
            "Next steps",
            "Forgot password",
        ] {
            assert!(m.body.contains(needle), "{needle}");
        }
        assert_eq!(m.to, vec!["ops@northwind.example".to_string()]);
    }

    #[test]
    fn the_notified_tag_reads_back_what_it_wrote() {
        let mut tag = NotifiedTag::parse("");
        assert!(tag.is_empty());
        assert_eq!(tag.get(NotificationEvent::Joined), None);
        tag.set(
            NotificationEvent::Joined,
            &Delivery::Sending("2026-11-24T10:00:00Z".into()),
        );
        tag.set(
            NotificationEvent::Closed,
            &Delivery::Sent("2026-12-01T08:30:00Z".into()),
        );
        let value = tag.render();
        assert_eq!(
            value,
            "Closed=sent@2026-12-01T08:30:00Z Joined=sending@2026-11-24T10:00:00Z"
        );
        // Only characters AWS Organizations allows in tag values, well under 256.
        assert!(
            value
                .chars()
                .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
        );
        let back = NotifiedTag::parse(&value);
        assert_eq!(back, tag);
        assert_eq!(
            back.get(NotificationEvent::Joined),
            Some(Delivery::Sending("2026-11-24T10:00:00Z".into()))
        );
        assert_eq!(
            back.get(NotificationEvent::Closed),
            Some(Delivery::Sent("2026-12-01T08:30:00Z".into()))
        );
        let mut back = back;
        back.remove(NotificationEvent::Joined);
        assert_eq!(back.render(), "Closed=sent@2026-12-01T08:30:00Z");
        // Anything else written there counts as an attempt: never sent twice.
        assert_eq!(
            NotifiedTag::parse("Joined=yes").get(NotificationEvent::Joined),
            Some(Delivery::Sending("yes".into()))
        );
        assert_eq!(
            NotifiedTag::parse("junk =x Closed=").get(NotificationEvent::Closed),
            None
        );
    }

    #[test]
    fn closed_mail_says_what_closing_means() {
        let m = compose(
            NotificationEvent::Closed,
            "billing@partner.example",
            &["ops@northwind.example".into()],
            &facts(),
        );
        assert!(m.subject.contains("closed"));
        assert!(m.body.contains("90 days"));
    }
}
