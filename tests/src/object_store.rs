//! A throwaway S3-compatible store for the tests: `moto_server` (PyPI's
//! `moto[server]`, installed by `scripts/install-deps.sh`) on a free
//! loopback port, with one bucket, stopped when dropped. Production uses any
//! S3-compatible store (MinIO, Ceph RGW, Garage, a cloud provider's); moto is
//! chosen here because it installs from a registry this machine reaches and
//! speaks the S3 API object_store uses (multipart, listing, conditional puts).

use std::time::{Duration, Instant};

/// A running S3-compatible server with one bucket.
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3Server {
    /// Starts `moto_server` and creates `bucket`. Panics (the test fails)
    /// when it cannot: the store is part of what the test checks.
    pub async fn start(bucket: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start python3 -m moto.server (pip install 'moto[server]'; scripts/install-deps.sh does)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = Self {
            child,
            endpoint,
            bucket: bucket.to_string(),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(&server.endpoint).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not answer on {} within 30 s",
                server.endpoint
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.add_bucket(bucket).await;
        server
    }

    /// Creates another bucket on the same server.
    pub async fn add_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create the bucket");
        assert!(
            r.status().is_success(),
            "bucket not created: {}",
            r.status()
        );
    }

    /// The same settings as `BILAN_<SETTING>` variables, for a server
    /// process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BILAN_PHOTO_STORE", "s3".into()),
            ("BILAN_S3_BUCKET", self.bucket.clone()),
            ("BILAN_S3_ENDPOINT", self.endpoint.clone()),
            ("BILAN_S3_ACCESS_KEY_ID", "test".into()),
            ("BILAN_S3_SECRET_ACCESS_KEY", "test".into()),
        ]
    }

    /// Server settings that keep photos in this bucket.
    pub fn configure(&self, c: &mut bilan_server::Config) {
        c.photo_store = bilan_server::config::PhotoStoreKind::S3;
        c.s3_bucket = self.bucket.clone();
        c.s3_endpoint = self.endpoint.clone();
        c.s3_access_key_id = "test".into();
        c.s3_secret_access_key = bilan_server::config::Secret("test".into());
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
