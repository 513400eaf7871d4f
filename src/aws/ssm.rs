//! [`SsmClient`]: decrypted Parameter Store values (`GetParameters`), for build secrets (B12).

use std::collections::BTreeMap;

use super::AwsConfig;
use super::error::{AwsError, Call, Resource};

/// The most names one `GetParameters` call takes.
pub const GET_PARAMETERS_BATCH: usize = 10;

/// An SSM client whose errors name the parameters and the endpoint.
#[derive(Debug, Clone)]
pub struct SsmClient {
    client: aws_sdk_ssm::Client,
    endpoint: String,
}

impl SsmClient {
    /// A client for `config`'s region and endpoint.
    pub fn new(config: &AwsConfig) -> Self {
        Self {
            client: aws_sdk_ssm::Client::new(config.sdk()),
            endpoint: config.endpoint_label("ssm"),
        }
    }

    /// The decrypted values of `names`, keyed by the name as asked for (a name, an ARN, or a
    /// `name:version` / `name:label` selector), in batches of [`GET_PARAMETERS_BATCH`]. Every
    /// name SSM does not know is named in one [`AwsError::ParametersNotFound`].
    pub async fn get_parameters(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let mut unique: Vec<String> = names.to_vec();
        unique.sort();
        unique.dedup();
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for batch in unique.chunks(GET_PARAMETERS_BATCH) {
            let output = self
                .client
                .get_parameters()
                .set_names(Some(batch.to_vec()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|error| self.call(batch).fail(error))?;
            for asked in batch {
                let found = output
                    .parameters()
                    .iter()
                    .find(|parameter| answers(parameter, asked));
                match found.and_then(aws_sdk_ssm::types::Parameter::value) {
                    Some(value) => {
                        values.insert(asked.clone(), value.to_owned());
                    }
                    None => missing.push(asked.clone()),
                }
            }
        }
        if missing.is_empty() {
            Ok(values)
        } else {
            Err(AwsError::ParametersNotFound { names: missing })
        }
    }

    fn call<'a>(&'a self, batch: &[String]) -> Call<'a> {
        Call {
            operation: "GetParameters",
            endpoint: &self.endpoint,
            resource: Resource::Parameters {
                names: batch.to_vec(),
            },
            kms_key_id: None,
        }
    }
}

/// Whether `parameter` is the one asked for as `asked`: by name or by ARN, with the
/// `:version` or `:label` selector when one was given.
fn answers(parameter: &aws_sdk_ssm::types::Parameter, asked: &str) -> bool {
    let selector = parameter.selector().unwrap_or("");
    [parameter.name(), parameter.arn()]
        .into_iter()
        .flatten()
        .any(|id| asked.strip_prefix(id).is_some_and(|rest| rest == selector))
}
