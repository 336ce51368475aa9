//! One connection to one broker: frames, correlation ids, and the version of each API both
//! sides speak (from ApiVersions, as every Kafka client negotiates), so `shoalctl` works
//! against old and new brokers, Apache Kafka's included.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::security::Transport;

/// A byte stream to a broker: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Largest response accepted (the size prefix is checked before anything is read into memory).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

pub struct Connection {
    pub address: String,
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
    /// API key -> highest version the broker supports.
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

impl Connection {
    pub async fn open(
        address: &str,
        timeout: Duration,
        transport: &Transport,
    ) -> anyhow::Result<Connection> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to {address}: timed out"))?
            .with_context(|| format!("connecting to {address}"))?;
        tcp.set_nodelay(true).ok();
        let stream: Box<dyn Stream> = match &transport.tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = address
                    .rsplit_once(':')
                    .map_or(address, |(host, _)| host)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_owned())
                    .with_context(|| format!("{host:?} is not a host name for TLS"))?;
                let connector = shoal_tls::TlsConnector::from(std::sync::Arc::clone(config));
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| anyhow::anyhow!("TLS handshake with {address}: timed out"))?
                    .with_context(|| format!("TLS handshake with {address}"))?;
                Box::new(tls)
            }
        };
        let mut connection = Connection {
            address: address.to_string(),
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
            timeout,
        };
        // ApiVersions v0 is understood by every broker; its answer lists the rest.
        let response = connection
            .send(ApiVersionsRequest::default(), 0)
            .await
            .with_context(|| format!("ApiVersions from {address}"))?;
        if response.error_code != 0 {
            bail!(
                "{address} refused ApiVersions: {}",
                shoal_kafka::error_name(response.error_code)
            );
        }
        connection.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(login) = &transport.sasl {
            connection.authenticate(login).await.with_context(|| {
                format!(
                    "SASL {} login to {address} as {}",
                    login.mechanism, login.username
                )
            })?;
        }
        Ok(connection)
    }

    /// SaslHandshake v1, then SaslAuthenticate: PLAIN in one step, SCRAM in two (the server's
    /// final signature is checked, so a server that does not know the credential is caught).
    async fn authenticate(&mut self, login: &super::security::SaslLogin) -> anyhow::Result<()> {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let handshake = self
            .send(
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(login.mechanism.clone())),
                1,
            )
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            bail!(
                "{}: the broker offers {}",
                shoal_kafka::error_name(handshake.error_code),
                offered.join(", ")
            );
        }
        let version = self.version::<SaslAuthenticateRequest>()?;
        let mut step = async |bytes: Vec<u8>| -> anyhow::Result<Vec<u8>> {
            let response = self
                .send(
                    SaslAuthenticateRequest::default().with_auth_bytes(bytes.into()),
                    version,
                )
                .await?;
            if response.error_code != 0 {
                bail!(
                    "{}: {}",
                    shoal_kafka::error_name(response.error_code),
                    response.error_message.as_ref().map_or("", |m| m.as_str())
                );
            }
            Ok(response.auth_bytes.to_vec())
        };
        if login.mechanism == "PLAIN" {
            step(format!("\0{}\0{}", login.username, login.password).into_bytes()).await?;
            return Ok(());
        }
        let mechanism = shoal_sasl::ScramMechanism::from_name(&login.mechanism)?;
        let salt = shoal_sasl::new_salt()?;
        let nonce: String = salt.iter().map(|b| format!("{b:02x}")).collect();
        let (client, first) =
            shoal_sasl::ScramClient::first(mechanism, &login.username, &login.password, &nonce);
        let server_first = step(first).await?;
        let (client, last) = client.last(&server_first)?;
        let server_final = step(last).await?;
        client.verify(&server_final)?;
        Ok(())
    }

    /// The highest version of `R` both this tool and the broker speak.
    pub fn version<R: Request>(&self) -> anyhow::Result<i16> {
        let (broker_min, broker_max) = self.versions.get(&R::KEY).copied().with_context(|| {
            format!(
                "{} does not support API key {} ({})",
                self.address,
                R::KEY,
                api_name(R::KEY)
            )
        })?;
        let ours = R::VERSIONS;
        let version = broker_max.min(ours.max);
        if version < broker_min.max(ours.min) {
            bail!(
                "{} speaks {} versions {broker_min}-{broker_max}, shoalctl {}-{}",
                self.address,
                api_name(R::KEY),
                ours.min,
                ours.max
            );
        }
        Ok(version)
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn call<R: Request>(&mut self, request: R) -> anyhow::Result<R::Response> {
        let version = self.version::<R>()?;
        self.send(request, version).await
    }

    pub async fn call_at<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        self.send(request, version).await
    }

    async fn send<R: Request>(&mut self, request: R, version: i16) -> anyhow::Result<R::Response> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("shoalctl")));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_u32(u32::try_from(body.len()).context("request too large")?);
        frame.extend_from_slice(&body);

        let address = self.address.clone();
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let size = self.stream.read_u32().await? as usize;
            if size > MAX_RESPONSE_BYTES {
                bail!("{address} sent a {size}-byte response (limit {MAX_RESPONSE_BYTES})");
            }
            let mut buf = vec![0u8; size];
            self.stream.read_exact(&mut buf).await?;
            Ok(bytes::Bytes::from(buf))
        };
        let mut response = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}: no answer to {} within {:?}",
                    self.address,
                    api_name(R::KEY),
                    self.timeout
                )
            })??;
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let response_header =
            kafka_protocol::messages::ResponseHeader::decode(&mut response, header_version)?;
        if response_header.correlation_id != correlation_id {
            bail!(
                "{}: response for correlation id {} while waiting for {correlation_id}",
                self.address,
                response_header.correlation_id
            );
        }
        let decoded = R::Response::decode(&mut response, version)
            .with_context(|| format!("decoding the {} response", api_name(R::KEY)))?;
        if response.has_remaining() {
            // Newer brokers may add tagged fields; leftover bytes are not an error.
        }
        Ok(decoded)
    }
}

pub fn api_name(key: i16) -> String {
    kafka_protocol::messages::ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("API {key}"))
}
