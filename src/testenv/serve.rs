//! A package served over plain HTTP from 127.0.0.1, for URL sources.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `body` at `http://127.0.0.1:<port>/package.zip` from the calling
/// runtime (HTTP/1.1, one request per connection); returns the URL.
pub async fn serve(body: Vec<u8>) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let (status, payload): (&str, &[u8]) = if path == "/package.zip" {
                    ("200 OK", &body)
                } else {
                    ("404 Not Found", b"not here")
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = conn.write_all(header.as_bytes()).await;
                let _ = conn.write_all(payload).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(format!("http://127.0.0.1:{port}/package.zip"))
}
