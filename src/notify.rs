//! E-mail notifications to account owners: the message text (pure) and sending it over SMTP.

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::api::notifications::{NotificationEvent, SmtpSettings, SmtpTls};
use crate::error::Error;
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
                "SmtpFailed",
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
                    "InvalidSpec",
                    format!("notifications.smtp.from {:?}: {e}", mail.from),
                )
            })?)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &mail.to {
            message = message.to(to.parse().map_err(|e| {
                Error::terminal("InvalidSpec", format!("notification recipient {to:?}: {e}"))
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
