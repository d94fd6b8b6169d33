//! The browser example `examples/web-chat` (issue 6) in headless Chromium, driven over WebDriver
//! (chromedriver): Alice logs in on the page, starts a direct chat with Bob and sends him a
//! message; Bob, a WebSocket client here, receives and reads it, and Alice's page shows the
//! message's ticks go sent → delivered → read; Bob's answer appears on her page, which reads it.
//!
//! Needs `chromium` and `chromium-driver` (Debian; `.ci/run` installs them). Without them the
//! test fails, saying so: it never skips. `HEARTH_CHROMEDRIVER` and `HEARTH_CHROMIUM` point
//! elsewhere.

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{ClientBuilder, Locator};
use futures::{SinkExt, StreamExt};
use hearth_complement_tests::{
    Client, TestServer,
    client::{enc, eventually},
    scenario,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const WAIT: Duration = Duration::from_secs(30);

// === The browser ===============================================================================

/// A chromedriver process, killed when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let binary =
            std::env::var("HEARTH_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        assert!(
            Path::new(&binary).exists(),
            "{binary} is missing: the web chat test needs Chromium and chromedriver \
             (apt-get install chromium chromium-driver; .ci/run does it)"
        );
        // chromedriver takes a port, not a listener: find a free one.
        let port = StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        Chromedriver { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// A headless Chromium session.
    async fn session(&self) -> fantoccini::Client {
        let chromium = std::env::var("HEARTH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let options = json!({
            "binary": chromium,
            // No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        let capabilities = json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let Value::Object(capabilities) = capabilities else { unreachable!("an object literal") };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(capabilities);
        // chromedriver listens a moment after it starts.
        let mut last_error = None;
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            match builder.connect(&self.url).await {
                Ok(client) => return client,
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no Chromium session from chromedriver at {}: {last_error:?}", self.url);
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `examples/web-chat` over HTTP on a loopback port (the page then talks to Hearth on
/// another origin, as a page hosted anywhere would); its base URL.
async fn serve_example() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/web-chat");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the static server");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("/");
                let name = target.split('?').next().unwrap_or("/").trim_start_matches('/');
                let name = if name.is_empty() { "index.html" } else { name };
                let kind = match name.rsplit('.').next() {
                    Some("html") => "text/html; charset=utf-8",
                    Some("js") => "text/javascript; charset=utf-8",
                    Some("css") => "text/css; charset=utf-8",
                    _ => "application/octet-stream",
                };
                // Only the example's own files, by plain name.
                let file = (!name.contains('/') && !name.contains(".."))
                    .then(|| std::fs::read(dir.join(name)).ok())
                    .flatten();
                let response = match file {
                    Some(body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        [head.into_bytes(), body].concat()
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
                    }
                };
                let _ = stream.write_all(&response).await;
            });
        }
    });
    format!("http://{address}")
}

/// Runs `script` (a function body) in the page until it returns something other than null.
async fn page_until(browser: &fantoccini::Client, what: &str, script: &str) -> Value {
    eventually(what, WAIT, || async {
        let value = browser.execute(script, vec![]).await.expect("running a script in the page");
        (!value.is_null()).then_some(value)
    })
    .await
}

async fn fill(browser: &fantoccini::Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.expect("a field");
    field.clear().await.expect("clearing a field");
    field.send_keys(text).await.expect("typing");
}

async fn click(browser: &fantoccini::Client, css: &str) {
    browser.find(Locator::Css(css)).await.expect("a button").click().await.expect("clicking");
}

// === Bob, a WebSocket client ===================================================================

/// Bob's socket: frames arrive on a channel, read by a task that keeps reading (so pings are
/// answered, which is what tells the server a batch was delivered).
struct Bob {
    frames: mpsc::UnboundedReceiver<Value>,
    commands: mpsc::UnboundedSender<Value>,
}

impl Bob {
    async fn connect(hs: &TestServer, client: &Client) -> Bob {
        let url = format!("{}/_hearth/client/v1/ws?format=simple", hs.base_url.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("a WebSocket request");
        let token = client.token.clone().expect("a token");
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("a header"));
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("Bob's socket opens");
        let (mut sink, mut stream) = socket.split();
        let (frames_in, frames) = mpsc::unbounded_channel();
        let (commands, mut to_send) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else { return };
                            if frames_in.send(frame).is_err() { return }
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    Some(command) = to_send.recv() => {
                        if sink.send(Message::Text(command.to_string().into())).await.is_err() { return }
                    }
                }
            }
        });
        Bob { frames, commands }
    }

    fn send(&self, frame: Value) {
        self.commands.send(frame).expect("Bob's socket is open");
    }

    /// Reads frames until one matches; that one.
    async fn until(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let read = async {
            while let Some(frame) = self.frames.recv().await {
                if matches(&frame) {
                    return frame;
                }
            }
            panic!("Bob's socket closed while waiting for {what}");
        };
        tokio::time::timeout(WAIT, read).await.unwrap_or_else(|_| panic!("no frame for {what} in time"))
    }
}

// === The scenario ==============================================================================

/// The status history of the tick of Alice's message `body` on the page, once it reaches
/// `status` (null until then).
fn tick_script(body: &str, status: &str) -> String {
    format!(
        "for (const item of document.querySelectorAll('#messages li.own')) {{
             const tick = item.querySelector('.tick');
             if (item.querySelector('.body').textContent === {body} && tick.dataset.status === {status})
                 return {{ id: item.dataset.id, history: tick.dataset.history }};
         }}
         return null;",
        body = json!(body),
        status = json!(status),
    )
}

scenario!(the_web_chat_shows_sent_delivered_and_read_ticks, |backend| {
    let hs = TestServer::start(backend).await;
    hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let chromedriver = Chromedriver::start();
    let browser = chromedriver.session().await;
    let example = serve_example().await;

    // Alice logs in on the page and starts a direct chat with Bob.
    let page = format!("{example}/index.html?homeserver={}", enc(&hs.base_url));
    browser.goto(&page).await.expect("opening the example");
    let chat = browser.find(Locator::Css("#chat")).await.expect("the chat");
    assert!(!chat.is_displayed().await.expect("asking the page"), "no chat before logging in");
    fill(&browser, "#username", "alice").await;
    fill(&browser, "#password", "passw0rd!").await;
    click(&browser, "#login-button").await;
    let connected = "return document.getElementById('connection').dataset.state === 'online' ? true : null;";
    page_until(&browser, "the page's socket", connected).await;
    let login_form = browser.find(Locator::Css("#login")).await.expect("the login form");
    assert!(
        !login_form.is_displayed().await.expect("asking the page"),
        "the login form is gone once logged in"
    );
    fill(&browser, "#participant", bob.me()).await;
    click(&browser, "#new-conversation-button").await;
    let opened = "return document.getElementById('text').disabled ? null : true;";
    page_until(&browser, "the new conversation open", opened).await;

    // Bob accepts the invite, as any Matrix client would.
    let conversations = format!("/api/v1/users/{}/conversations", enc(bob.me()));
    let conversation = eventually("Bob's invite", WAIT, || async {
        let listed = bob.get(&conversations).await;
        listed.body["conversations"][0]["conversation_id"].as_str().map(str::to_owned)
    })
    .await;
    bob.join_room(&conversation).await;

    // Alice sends; persisted, it is "sent" while Bob has no device online.
    fill(&browser, "#text", "hello Bob").await;
    click(&browser, "#send").await;
    let sent = page_until(&browser, "the sent tick", &tick_script("hello Bob", "sent")).await;
    let message_id = sent["id"].as_str().expect("the message's ID").to_owned();
    assert_eq!(sent["history"], "sent");

    // Bob's socket receives it: delivered.
    let mut bob_ws = Bob::connect(&hs, &bob).await;
    let is_alices = |f: &Value| f["type"] == "new_message" && f["message_id"] == message_id.as_str();
    let received = bob_ws.until("Alice's message", is_alices).await;
    assert_eq!(received["content"]["body"], "hello Bob");
    let delivered = page_until(&browser, "the delivered tick", &tick_script("hello Bob", "delivered")).await;
    assert_eq!(delivered["history"], "sent delivered");

    // Bob reads it: read.
    bob_ws.send(json!({ "type": "read_receipt", "message_id": message_id, "request_id": "r1" }));
    let answer = bob_ws.until("the receipt's answer", |f| f["request_id"] == "r1").await;
    assert_eq!(answer["type"], "result", "{answer}");
    let read = page_until(&browser, "the read tick", &tick_script("hello Bob", "read")).await;
    assert_eq!(read["history"], "sent delivered read");

    // Bob answers; Alice's page shows it and, the conversation being open, reads it.
    let reply = json!({ "type": "send_message", "conversation_id": conversation, "content": "hi Alice", "request_id": "m1" });
    bob_ws.send(reply);
    let answer = bob_ws.until("the send's answer", |f| f["request_id"] == "m1").await;
    let reply_id = answer["message_id"].as_str().expect("the reply's ID").to_owned();
    let shown = "for (const item of document.querySelectorAll('#messages li:not(.own) .body'))
                     if (item.textContent === 'hi Alice') return true;
                 return null;";
    page_until(&browser, "Bob's reply on Alice's page", shown).await;
    let read_by_alice = |f: &Value| {
        f["type"] == "message_status" && f["message_id"] == reply_id.as_str() && f["status"] == "read"
    };
    let status = bob_ws.until("Alice's read receipt", read_by_alice).await;
    assert_eq!(status["user_id"], format!("@alice:{}", hs.server_name));

    browser.close().await.expect("closing the browser");
});
