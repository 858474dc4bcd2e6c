//! From a Payer's credentials to SDK clients for that account.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::identity::IdentityApi;
use super::interceptor::{CallMetrics, RequestLog};
use super::organizations::OrganizationsApi;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::reconcile::reasons::{ACCESS_DENIED, CREDENTIALS_TIMEOUT, CREDENTIALS_UNAVAILABLE};
use crate::secrets::SecretString;

/// Retry tokens per payer connection (the SDK takes 5 per throttled retry, 14 per other
/// retry, and gives back on success).
pub const RETRY_TOKENS_PER_PAYER: usize = 5_000;

/// Region of the global services (Organizations, Billing Conductor, Cost Explorer, CUR, Data
/// Exports).
pub const GLOBAL_REGION: &str = "us-east-1";

/// Credentials for one payer, resolved from its spec (and Secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayerCredentialsSource {
    /// Static keys from a Secret.
    Static {
        access_key_id: String,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
    },
    /// Assume a role using the operator's own identity.
    AssumeRole {
        role_arn: String,
        /// From the Payer or a Secret: never printed.
        external_id: Option<SecretString>,
        session_name: String,
    },
    /// The operator's own identity (IRSA, Pod Identity, environment).
    DefaultChain,
}

/// Clients for one payer account.
#[derive(Clone)]
pub struct Connection {
    pub identity: Arc<dyn IdentityApi>,
    pub organizations: Arc<dyn OrganizationsApi>,
    pub billing: Arc<dyn super::billing::BillingApi>,
    pub costs: Arc<dyn super::costs::CostApi>,
    pub pipeline: Arc<dyn super::pipeline::PipelineApi>,
    /// Billing Conductor's preference of a billing transfer (BillingTransfer).
    pub transfer_preference: Arc<dyn super::transfer_preference::TransferPreferenceApi>,
}

/// Makes [`Connection`]s; the seam the reconcilers are tested through.
#[async_trait]
pub trait AwsConnect: Send + Sync {
    async fn connect(
        &self,
        credentials: &PayerCredentialsSource,
        region: &str,
    ) -> Result<Connection, Error>;
}

/// SDK settings shared by every payer.
#[derive(Clone, Debug)]
pub struct AwsOptions {
    /// Endpoint override. `None` leaves it to the SDK, which honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Attempts per call, first one included (SDK standard retry mode).
    pub max_attempts: u32,
    /// First retry delay of the SDK's own retries.
    pub initial_backoff: Duration,
    /// The operator's own identity, used for `assumeRole` and for payers without
    /// credentials. `None` leaves it to the SDK's default chain (IRSA, Pod Identity,
    /// environment), which is what `run`, `plan` and `apply` do.
    pub operator_credentials: Option<SharedCredentialsProvider>,
}

impl Default for AwsOptions {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            operator_credentials: None,
        }
    }
}

/// The real connector, backed by the AWS SDK.
pub struct SdkConnector {
    options: AwsOptions,
    http: SharedHttpClient,
    metrics: Arc<Metrics>,
    log: Option<Arc<RequestLog>>,
}

impl SdkConnector {
    pub fn new(options: AwsOptions, metrics: Arc<Metrics>) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        Self {
            options,
            http,
            metrics,
            log: None,
        }
    }

    /// Log every request of the connections made from now on into `log` (tests and
    /// benchmarks).
    pub fn with_request_log(mut self, log: Arc<RequestLog>) -> Self {
        self.log = Some(log);
        self
    }

    fn loader(&self, region: &str) -> ConfigLoader {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .http_client(self.http.clone())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(self.options.max_attempts)
                    .with_initial_backoff(self.options.initial_backoff),
            );
        if let Some(url) = &self.options.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        loader
    }

    /// A loader with the operator's own identity.
    fn operator_loader(&self, region: &str) -> ConfigLoader {
        match &self.options.operator_credentials {
            Some(provider) => self.loader(region).credentials_provider(provider.clone()),
            None => self.loader(region),
        }
    }

    async fn sdk_config(
        &self,
        credentials: &PayerCredentialsSource,
        region: &str,
    ) -> Result<SdkConfig, Error> {
        let config = match credentials {
            PayerCredentialsSource::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let creds = Credentials::new(
                    access_key_id.clone(),
                    secret_access_key.expose().to_string(),
                    session_token.as_ref().map(|t| t.expose().to_string()),
                    None,
                    "partnerbilling-secret",
                );
                self.loader(region).credentials_provider(creds).load().await
            }
            PayerCredentialsSource::AssumeRole {
                role_arn,
                external_id,
                session_name,
            } => {
                let base = self.operator_loader(region).load().await;
                let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn.clone())
                    .session_name(session_name.clone())
                    .configure(&base);
                if let Some(id) = external_id {
                    builder = builder.external_id(id.expose());
                }
                let provider = builder.build().await;
                self.loader(region)
                    .credentials_provider(provider)
                    .load()
                    .await
            }
            PayerCredentialsSource::DefaultChain => self.operator_loader(region).load().await,
        };
        // Resolve once now, so a credentials problem is reported as such and not as a failed
        // call. The credentials are handed to the SDK's identity cache, so this costs no
        // second AssumeRole.
        let provider = config.credentials_provider().ok_or_else(|| {
            Error::terminal(
                CREDENTIALS_UNAVAILABLE,
                "no credentials provider is configured for the operator",
            )
        })?;
        let first = provider
            .provide_credentials()
            .await
            .map_err(|e| credentials_error(credentials, &e))?;
        let primed = SharedCredentialsProvider::new(Primed {
            first: std::sync::Mutex::new(Some(first)),
            inner: provider,
        });
        let config = config.into_builder().credentials_provider(primed).build();
        Ok(config)
    }
}

/// A provider that hands out credentials it already holds once, then asks the inner provider
/// (for refreshes).
struct Primed {
    first: std::sync::Mutex<Option<Credentials>>,
    inner: SharedCredentialsProvider,
}

/// Never shows the inner provider: the SDK prints its clients' components at TRACE, and an
/// assume-role provider's own `Debug` shows the external id.
impl std::fmt::Debug for Primed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Primed { .. }")
    }
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        match first {
            Some(creds) => {
                aws_credential_types::provider::future::ProvideCredentials::ready(Ok(creds))
            }
            None => self.inner.provide_credentials(),
        }
    }
}

fn credentials_error(source: &PayerCredentialsSource, err: &CredentialsError) -> Error {
    let what = match source {
        PayerCredentialsSource::Static { .. } => "the access keys from the Secret".to_string(),
        PayerCredentialsSource::AssumeRole { role_arn, .. } => format!("assuming role {role_arn}"),
        PayerCredentialsSource::DefaultChain => {
            "the operator's own identity (IRSA, Pod Identity or environment)".to_string()
        }
    };
    let detail = DisplayErrorContext(err).to_string();
    match err {
        CredentialsError::ProviderTimedOut(_) => Error::retryable(
            CREDENTIALS_TIMEOUT,
            format!("getting credentials from {what} timed out"),
        ),
        _ if detail.contains("Throttl") || detail.contains("dispatch failure") => Error::retryable(
            CREDENTIALS_UNAVAILABLE,
            format!("getting credentials from {what} failed: {detail}"),
        ),
        CredentialsError::CredentialsNotLoaded(_) => Error::terminal(
            CREDENTIALS_UNAVAILABLE,
            format!(
                "no credentials from {what}: configure IRSA or Pod Identity for the operator, or set spec.credentials"
            ),
        ),
        _ if detail.contains("AccessDenied") => Error::terminal(
            ACCESS_DENIED,
            format!(
                "{what} was denied: the role's trust policy must allow the operator's identity (and the external id, if set): {detail}"
            ),
        ),
        _ => Error::terminal(
            CREDENTIALS_UNAVAILABLE,
            format!("getting credentials from {what} failed: {detail}"),
        ),
    }
}

#[async_trait]
impl AwsConnect for SdkConnector {
    async fn connect(
        &self,
        credentials: &PayerCredentialsSource,
        region: &str,
    ) -> Result<Connection, Error> {
        let regional = self.sdk_config(credentials, region).await?;
        let global = if region == GLOBAL_REGION {
            regional.clone()
        } else {
            regional
                .to_builder()
                .region(Region::new(GLOBAL_REGION))
                .build()
        };
        let metrics = CallMetrics::new(self.metrics.clone()).with_log(self.log.clone());
        // One retry budget per payer connection, larger than the SDK's shared default (500
        // tokens for the whole process): a throttling storm on one payer must not stop every
        // other payer's retries, and the operator's own per-object backoff sits on top.
        let partition = aws_smithy_runtime::client::retries::RetryPartition::custom(format!(
            "partner-billing-operator-{}",
            fastrand::u64(..)
        ))
        .token_bucket(aws_smithy_runtime::client::retries::TokenBucket::new(
            RETRY_TOKENS_PER_PAYER,
        ))
        .build();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&regional)
                .retry_partition(partition.clone())
                .interceptor(metrics.clone())
                .build(),
        );
        let organizations = aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&global)
                .retry_partition(partition.clone())
                .interceptor(metrics.clone())
                .build(),
        );
        let billing = aws_sdk_billingconductor::Client::from_conf(
            aws_sdk_billingconductor::config::Builder::from(&global)
                .retry_partition(partition.clone())
                .interceptor(metrics.clone())
                .build(),
        );
        let costs = aws_sdk_costexplorer::Client::from_conf(
            aws_sdk_costexplorer::config::Builder::from(&global)
                .retry_partition(partition.clone())
                .interceptor(metrics.clone())
                .build(),
        );
        // S3 behind a local endpoint (the emulator) wants path-style addressing.
        let path_style = self.options.endpoint_url.is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let pipeline =
            super::pipeline::SdkPipeline::new(&regional, &global, partition, metrics, path_style);
        Ok(Connection {
            identity: Arc::new(sts),
            organizations: Arc::new(organizations),
            transfer_preference: Arc::new(billing.clone()),
            billing: Arc::new(billing),
            costs: Arc::new(costs),
            pipeline: Arc::new(pipeline),
        })
    }
}
