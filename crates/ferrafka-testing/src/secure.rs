//! A one-node Apache Kafka with security on, for tests of credentials, certificates and ACLs:
//! a CA and certificates generated for the test, listeners for SASL/SCRAM over TLS, mutual
//! TLS and OAUTHBEARER (Kafka's unsecured JWS validator), and the standard authorizer with no
//! access unless an ACL grants it.
//!
//! ```no_run
//! let kafka = ferrafka_testing::SecureKafka::start().unwrap();
//! kafka.grant("User:app", "Read", "--topic", "orders").unwrap();
//! let properties = kafka.scram("app", kafka.app_password());
//! ```

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::KafkaCluster;

/// The SCRAM user that is a super user (it may do everything, ACLs or not).
pub const ADMIN_USER: &str = "admin";
/// The SCRAM user an app under test connects as; it may do only what [`SecureKafka::grant`]
/// allows.
pub const APP_USER: &str = "app";
/// The common name of the client certificate, and so (by the broker's principal mapping) the
/// principal `User:app-tls` of a mutual-TLS client.
pub const TLS_CLIENT: &str = "app-tls";

/// A running secured cluster and the files of its certificates; both go when dropped.
#[derive(Debug)]
pub struct SecureKafka {
    cluster: KafkaCluster,
    dir: PathBuf,
    app_password: String,
    admin_password: String,
}

/// Writes `contents` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A CA named `name`: its certificate (PEM) and what signs with it.
fn ca(name: &str) -> Result<(String, Issuer<'static, KeyPair>), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate()?;
    let pem = params.self_signed(&key)?.pem();
    Ok((pem, Issuer::new(params, key)))
}

/// A certificate for `common_name` (valid for `localhost` and `127.0.0.1`) signed by
/// `issuer`: the certificate and its PKCS#8 key, both PEM.
fn leaf(common_name: &str, issuer: &Issuer<'_, KeyPair>) -> Result<(String, String), rcgen::Error> {
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate()?;
    Ok((params.signed_by(&key, issuer)?.pem(), key.serialize_pem()))
}

/// `<pid>-<nanoseconds>`: different in every run.
fn stamp() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:09}", std::process::id())
}

/// A password nobody can guess from the code, so a test can search output for it.
fn password(user: &str) -> String {
    format!("{user}-pw-{}", stamp())
}

impl SecureKafka {
    /// Generates the certificates and starts the node (Kafka installed by Maven when needed).
    pub fn start() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("ferrafka-secure-{}", stamp()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let files = Self::certificates(&dir).map_err(|e| format!("certificates: {e}"))?;
        let (app_password, admin_password) = (password(APP_USER), password(ADMIN_USER));
        let scram = |user: &str, pw: &str| format!("SCRAM-SHA-512=[name={user},password={pw}]");
        let config = [
            "ssl.keystore.type=PEM".to_string(),
            format!("ssl.keystore.location={}", files.keystore.display()),
            "ssl.truststore.type=PEM".into(),
            format!("ssl.truststore.location={}", files.ca.display()),
            "listener.name.mtls.ssl.client.auth=required".into(),
            "listener.name.scram.sasl.enabled.mechanisms=SCRAM-SHA-512".into(),
            "listener.name.scram.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
            "listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER".into(),
            "listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";".into(),
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            // ANONYMOUS is the plaintext listener's principal: the controller's, and the
            // test's own setup (creating topics, granting ACLs). Apps use the secured ones.
            format!("super.users=User:ANONYMOUS;User:{ADMIN_USER}"),
            "ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT".into(),
        ];
        let mut args: Vec<String> = [
            "--listener",
            "SCRAM=SASL_SSL",
            "--listener",
            "MTLS=SSL",
            "--listener",
            "OAUTH=SASL_SSL",
            "--scram",
        ]
        .map(String::from)
        .into();
        args.push(scram(ADMIN_USER, &admin_password));
        args.push("--scram".into());
        args.push(scram(APP_USER, &app_password));
        for c in config {
            args.push("--broker-config".into());
            args.push(c);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cluster = KafkaCluster::start_with(1, &args)?;
        Ok(SecureKafka {
            cluster,
            dir,
            app_password,
            admin_password,
        })
    }

    /// Writes the CA, the broker's key and certificate, the client's, and an unrelated CA.
    fn certificates(dir: &Path) -> Result<Files, String> {
        let e = |e: rcgen::Error| e.to_string();
        let (ca_pem, issuer) = ca("ferrafka test CA").map_err(e)?;
        let (broker_cert, broker_key) = leaf("broker", &issuer).map_err(e)?;
        let (client_cert, client_key) = leaf(TLS_CLIENT, &issuer).map_err(e)?;
        // A CA that signed nothing here: a client trusting only it must refuse the broker.
        let (other_ca, _) = ca("some other CA").map_err(e)?;
        write(dir, "client.pem", &client_cert)?;
        write(dir, "client.key", &client_key)?;
        write(dir, "other-ca.pem", &other_ca)?;
        Ok(Files {
            ca: write(dir, "ca.pem", &ca_pem)?,
            keystore: write(dir, "broker.pem", &format!("{broker_key}{broker_cert}"))?,
        })
    }

    /// The plaintext listener, where `User:ANONYMOUS` is a super user: for a test's setup
    /// only (creating topics, producing fixtures).
    pub fn setup_bootstrap(&self) -> &str {
        &self.cluster.bootstrap
    }

    /// The password of [`APP_USER`], different in every run.
    pub fn app_password(&self) -> &str {
        &self.app_password
    }

    /// The password of [`ADMIN_USER`], different in every run.
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The CA certificate that signed the broker's and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA certificate that signed nothing of this cluster.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    fn listener(&self, name: &str) -> String {
        self.cluster
            .listener(name)
            .unwrap_or_else(|| panic!("scripts/kafka printed no LISTENER_{name}"))
            .to_string()
    }

    /// librdkafka properties for SASL/SCRAM-SHA-512 over TLS as `user`.
    pub fn scram(&self, user: &str, password: &str) -> Vec<(String, String)> {
        pairs(&[
            ("bootstrap.servers", &self.listener("SCRAM")),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", user),
            ("sasl.password", password),
            ("ssl.ca.location", &self.ca().display().to_string()),
        ])
    }

    /// librdkafka properties for mutual TLS with the client certificate (`User:app-tls`).
    pub fn mtls(&self) -> Vec<(String, String)> {
        pairs(&[
            ("bootstrap.servers", &self.listener("MTLS")),
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &self.ca().display().to_string()),
            (
                "ssl.certificate.location",
                &self.dir.join("client.pem").display().to_string(),
            ),
            (
                "ssl.key.location",
                &self.dir.join("client.key").display().to_string(),
            ),
        ])
    }

    /// librdkafka properties for OAUTHBEARER over TLS with an unsigned token for `principal`
    /// (the broker runs Kafka's unsecured validator: a test setup, never production).
    pub fn oauth(&self, principal: &str) -> Vec<(String, String)> {
        pairs(&[
            ("bootstrap.servers", &self.listener("OAUTH")),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
            ("sasl.oauthbearer.config", &format!("principal={principal}")),
            ("ssl.ca.location", &self.ca().display().to_string()),
        ])
    }

    /// Allows `principal` (e.g. `User:app`) `operation` (e.g. `Read`) on a resource
    /// (`resource` is `--topic`, `--group` or `--transactional-id`).
    pub fn grant(
        &self,
        principal: &str,
        operation: &str,
        resource: &str,
        name: &str,
    ) -> Result<(), String> {
        let bootstrap = self.setup_bootstrap();
        self.cluster
            .tool(
                "acls",
                &[
                    "--bootstrap-server",
                    bootstrap,
                    "--add",
                    "--allow-principal",
                    principal,
                    "--operation",
                    operation,
                    resource,
                    name,
                ],
            )
            .map(drop)
    }
}

/// The files the broker reads.
struct Files {
    ca: PathBuf,
    keystore: PathBuf,
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
