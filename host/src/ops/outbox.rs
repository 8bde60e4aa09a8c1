//! Delivering the notification outbox over SMTP (when `CANOPY_SMTP_URL` is
//! set). Notifications are written with the operation that causes them; a
//! background loop on each host claims undelivered ones, sends them and
//! records the outcome, retrying a bounded number of times. Password
//! resets go the same way; their token is minted at each attempt and only
//! its hash is stored, so no token waits in the outbox in clear.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Canopy;
use crate::secrets::{new_secret, sha256_hex};
use crate::store;
use crate::store::notifications::Notification;
use crate::store::password_resets::PendingReset;

/// How often the outbox is polled.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Notifications claimed per poll.
const BATCH_MAX: i64 = 50;
/// Attempts before a notification is given up on (it stays listed).
const ATTEMPTS_MAX: i64 = 10;
/// How long a host holds a claimed notification.
const CLAIM_US: i64 = 60 * 1_000_000;
/// Per-message SMTP timeout.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and as whom notifications are sent.
#[derive(Debug, Clone)]
pub struct Smtp {
    /// `smtp://[user:password@]host[:port]` (plain; STARTTLS needs a relay).
    pub url: String,
    pub from: String,
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(smtp: &Smtp) -> Result<Mailer, String> {
        let url = url::Url::parse(&smtp.url).map_err(|e| format!("bad SMTP URL: {e}"))?;
        if url.scheme() != "smtp" {
            return Err(format!(
                "the SMTP URL must start with smtp://, not {}://",
                url.scheme()
            ));
        }
        let host = url.host_str().ok_or("the SMTP URL names no host")?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(25))
            .timeout(Some(SEND_TIMEOUT));
        if !url.username().is_empty() {
            let password = url.password().unwrap_or_default();
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    url.username().to_string(),
                    password.to_string(),
                ));
        }
        let transport = builder.build();
        let from = smtp
            .from
            .parse()
            .map_err(|e| format!("bad sender address `{}`: {e}", smtp.from))?;
        Ok(Mailer { transport, from })
    }

    async fn send(&self, n: &Notification) -> Result<(), String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(format!("Low balance on account {}", n.account_id));
        for to in &n.emails {
            builder = builder.to(to.parse().map_err(|e| format!("bad address {to}: {e}"))?);
        }
        let body = format!(
            "The budget of account {} fell below its alert threshold of {}: it is now {}.\n",
            n.account_id,
            n.threshold.map(|t| t.to_api_string()).unwrap_or_default(),
            n.budget.map(|b| b.to_api_string()).unwrap_or_default(),
        );
        let email = builder.body(body).map_err(|e| e.to_string())?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Mailer {
    async fn send_reset(&self, reset: &PendingReset, token: &str) -> Result<(), String> {
        let to = reset
            .email
            .parse()
            .map_err(|e| format!("bad address {}: {e}", reset.email))?;
        let body = format!(
            "Someone asked to set the password of the Canopy user {email}.\nIf it was you, send this token with your new password to\nPOST /v1/password-resets/confirm within an hour:\n\n{token}\n\nThis also confirms that {email} is yours.\nIf it was not you, ignore this message.\n",
            email = reset.email,
        );
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Set your Canopy password")
            .body(body)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Delivers the outbox until the task is dropped.
pub async fn deliver_forever(canopy: Arc<Canopy>, mailer: Mailer) {
    let mut every = tokio::time::interval(POLL_EVERY);
    loop {
        every.tick().await;
        if let Err(e) = deliver_once(&canopy, &mailer).await {
            tracing::warn!(error = %e, "notification delivery pass failed");
        }
        // Resets are delivered on their own, so a failing notification
        // pass never holds back a user's reset.
        if let Err(e) = deliver_resets(&canopy, &mailer).await {
            tracing::warn!(error = %e, "password reset delivery pass failed");
        }
    }
}

async fn deliver_once(canopy: &Canopy, mailer: &Mailer) -> crate::Result<()> {
    let now_us = canopy.clock.now_us();
    let claimed = {
        let mut tx = canopy.store.begin().await?;
        let claimed = store::notifications::claim_undelivered(
            &mut tx,
            ATTEMPTS_MAX,
            now_us,
            now_us + CLAIM_US,
            BATCH_MAX,
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        claimed
    };
    for n in claimed {
        let outcome = mailer.send(&n).await;
        if let Err(e) = &outcome {
            tracing::warn!(notification = %n.id, attempt = n.attempts, error = %e, "notification not delivered");
        }
        let mut tx = canopy.store.begin().await?;
        let delivered = outcome.is_ok().then(|| canopy.clock.now_us());
        store::notifications::record_attempt(&mut tx, &n.id, delivered, outcome.err().as_deref())
            .await?;
        tx.commit().await.map_err(store::db_error)?;
    }
    Ok(())
}

async fn deliver_resets(canopy: &Canopy, mailer: &Mailer) -> crate::Result<()> {
    let now_us = canopy.clock.now_us();
    let claimed = {
        let mut tx = canopy.store.begin().await?;
        let claimed = store::password_resets::claim_undelivered(
            &mut tx,
            ATTEMPTS_MAX,
            now_us,
            now_us + CLAIM_US,
            BATCH_MAX,
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        claimed
    };
    for reset in claimed {
        // A new token for each attempt: the token of a failed attempt
        // stops being valid.
        let token = new_secret("cpr");
        {
            let mut tx = canopy.store.begin().await?;
            store::password_resets::set_token(&mut tx, &reset.id, &sha256_hex(token.as_bytes()))
                .await?;
            tx.commit().await.map_err(store::db_error)?;
        }
        let outcome = mailer.send_reset(&reset, &token).await;
        if let Err(e) = &outcome {
            tracing::warn!(reset = %reset.id, attempt = reset.attempts, error = %e, "password reset not delivered");
        }
        let mut tx = canopy.store.begin().await?;
        let delivered = outcome.is_ok().then(|| canopy.clock.now_us());
        store::password_resets::record_attempt(
            &mut tx,
            &reset.id,
            delivered,
            outcome.err().as_deref(),
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
    }
    Ok(())
}
