//! A TCP proxy a test can cut and restore, for store and queue outages on LocalStack, and
//! a look straight into LocalStack's bucket.
//!
//! Cut, the proxy closes every open connection and stops listening, so clients get
//! "connection refused" — what they see when LocalStack (or an AWS endpoint) goes away.
//! Restored, it listens again and LocalStack behind it still holds the bucket, the queues
//! and the messages in flight, as S3 and SQS do after an outage. (Stopping LocalStack itself
//! would lose them: its free edition keeps no state across a restart, which no real outage
//! does.)

use crate::helpers::get;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A TCP proxy to `upstream` that can be cut and restored.
pub struct Proxy {
    pub address: SocketAddr,
    up: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    pub accepted: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = Self {
            address,
            up: Arc::new(AtomicBool::new(true)),
            stopped: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
            accepted: Arc::new(AtomicU64::new(0)),
        };
        let (up, stopped, open, accepted) =
            (proxy.up.clone(), proxy.stopped.clone(), proxy.open.clone(), proxy.accepted.clone());
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !stopped.load(Ordering::SeqCst) {
                // Listen only while up: while cut, connecting is refused.
                match (&listener, up.load(Ordering::SeqCst)) {
                    (Some(_), false) => listener = None,
                    (None, true) => listener = Some(TcpListener::bind(address).unwrap()),
                    _ => {}
                }
                let Some(active) = &listener else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                active.set_nonblocking(true).unwrap();
                match active.accept() {
                    Ok((_, _)) if !up.load(Ordering::SeqCst) => {} // cut meanwhile: dropped unanswered
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        accepted.fetch_add(1, Ordering::SeqCst);
                        let Ok(server) = TcpStream::connect(upstream) else { continue };
                        let mut open = open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Refuses new connections and closes every open one, until `restore`.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        // Wait until the listener is really gone, so no connection slips in after the sweep.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.address).is_ok() {
            assert!(Instant::now() < deadline, "proxy still accepts connections after the cut");
            std::thread::sleep(Duration::from_millis(10));
        }
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The keys under `prefix` in the bucket, straight from LocalStack (which takes unsigned requests).
pub fn bucket_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let listing = get(&format!("{endpoint}/{bucket}?list-type=2&max-keys=1000&prefix={prefix}"));
    assert_eq!(listing.status, 200, "{}", listing.text());
    listing.text().split("<Key>").skip(1).filter_map(|rest| rest.split("</Key>").next()).map(str::to_owned).collect()
}

pub fn address_of(endpoint: &str) -> SocketAddr {
    let host_port = endpoint.trim_start_matches("http://").trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(host_port).unwrap().next().unwrap()
}
