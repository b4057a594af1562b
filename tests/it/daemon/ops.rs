//! What operators watch and do: `/healthz`, `/readyz` and `/metrics` with
//! counts that match what was sent, `sesroute health`, and live reload on
//! SIGHUP (a valid change applied, an invalid one leaving the old config).

use std::time::Duration;

use super::harness::{Aws, Daemon, config_head, eventually, file_sink, lines, source};
use crate::{read, samples};

/// The bound health and metrics address, from the daemon's log.
pub(super) async fn listen_address(daemon: &Daemon) -> String {
    eventually("the daemon to listen", Duration::from_secs(15), async || {
        daemon
            .log()
            .iter()
            .find(|line| line["message"] == "serving /healthz, /readyz and /metrics")
            .and_then(|line| line["listen"].as_str().map(str::to_owned))
            .ok_or_else(|| "not listening yet".to_owned())
    })
    .await
}

pub(super) async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

/// The value of the sample of `name` whose labels include every pair in `labels`.
pub(super) fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .find(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

fn bounce_from(source: &str, message_id: &str) -> String {
    let sample = read(&samples().join("bodies/01-bounce-permanent-general-bare.json"));
    let mut body: serde_json::Value = serde_json::from_str(&sample).expect("the sample is JSON");
    body["mail"]["source"] = source.into();
    body["mail"]["messageId"] = message_id.into();
    body.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_match_what_was_sent() {
    let Some(aws) = Aws::connect("ops-metrics").await else { return };
    let queue = aws.create_queue("in").await;
    let mut daemon = Daemon::new();
    let team = daemon.path("team.jsonl");
    let config = format!(
        "{}{}{}\n[[routes]]\nname = \"team\"\nsinks = [\"team\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("team", &team)
    );
    daemon.start(&config);
    let address = listen_address(&daemon).await;
    let base = format!("http://{address}");

    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    eventually("/readyz to answer 200", Duration::from_secs(20), async || {
        let (status, body) = get(&format!("{base}/readyz")).await;
        if status == 200 { Ok(()) } else { Err(format!("{status} {body}")) }
    })
    .await;

    for i in 0..3 {
        aws.send(&queue, &bounce_from("billing@acme.test", &format!("ops-{i}"))).await;
    }
    aws.send(&queue, "this is not SES").await;
    eventually("3 lines in the sink", Duration::from_secs(20), async || {
        let n = lines(&team).len();
        if n == 3 { Ok(()) } else { Err(format!("{n} lines")) }
    })
    .await;
    let text = eventually("the outcomes in /metrics", Duration::from_secs(20), async || {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let error = metric(&text, "sesroute_messages_total", &[("source", "in"), ("outcome", "error")]);
        if error.is_some() { Ok(text) } else { Err("no error outcome yet".to_owned()) }
    })
    .await;
    assert_eq!(metric(&text, "sesroute_messages_received_total", &[("source", "in")]), Some(4.0), "{text}");
    assert_eq!(metric(&text, "sesroute_messages_total", &[("source", "in"), ("outcome", "delivered")]), Some(3.0));
    assert_eq!(metric(&text, "sesroute_messages_total", &[("source", "in"), ("outcome", "error")]), Some(1.0));
    assert_eq!(metric(&text, "sesroute_route_matches_total", &[("route", "team")]), Some(3.0), "{text}");
    assert_eq!(metric(&text, "sesroute_sink_deliveries_total", &[("sink", "team"), ("result", "ok")]), Some(3.0));
    assert_eq!(metric(&text, "sesroute_sink_delivery_seconds_count", &[("sink", "team")]), Some(3.0), "{text}");
    assert_eq!(metric(&text, "sesroute_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    assert!(metric(&text, "sesroute_oldest_message_age_seconds", &[("source", "in")]).is_some(), "{text}");

    // `sesroute health` reads the listener from the config.
    let health_config = daemon.path("health.toml");
    std::fs::write(&health_config, format!("[server]\nlisten = \"{address}\"\n")).unwrap();
    for args in [&["health"][..], &["health", "--ready"][..]] {
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("sesroute"))
            .args(args)
            .arg("--config")
            .arg(&health_config)
            .env_remove("FAUXQS_ENDPOINT")
            .status()
            .unwrap();
        assert!(status.success(), "sesroute {args:?}: {status}");
    }
    daemon.stop().await;
    // The decision line of each notification, every line written out by exit.
    let log = daemon.log();
    let decisions: Vec<&serde_json::Value> = log.iter().filter(|line| line["message"] == "delivered").collect();
    assert_eq!(decisions.len(), 3, "one decision line per notification: {log:?}");
    for line in &decisions {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["sinks"], 1, "{line}");
        assert!(line["timestamp"].is_string() && line["target"].is_string(), "{line}");
        let span = &line["span"];
        assert_eq!(span["name"], "message", "{line}");
        assert_eq!((&span["queue"], &span["kind"], &span["routes"]), (&"in".into(), &"bounce".into(), &"team".into()));
        assert_eq!(span["source"], "billing@acme.test", "{line}");
        assert!(span["message_id"].as_str().is_some_and(|id| id.starts_with("ops-")), "{line}");
        assert!(span["sqs_message_id"].is_string() && span["receive_count"] == 1, "{line}");
    }
    assert_eq!(log.last().map(|line| line["message"].clone()), Some("stopped".into()), "the last line is written");
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("sesroute"))
        .args(["health", "--config"])
        .arg(&health_config)
        .env_remove("FAUXQS_ENDPOINT")
        .status()
        .unwrap();
    assert!(!status.success(), "health fails once the daemon is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_valid_config_and_keeps_the_old_one_on_an_invalid_one() {
    let Some(aws) = Aws::connect("ops-reload").await else { return };
    let queue = aws.create_queue("in").await;
    let added = aws.create_queue("added").await;
    let mut daemon = Daemon::new();
    let (first, second) = (daemon.path("first.jsonl"), daemon.path("second.jsonl"));
    // After the first reload the route goes to the second sink and a second source is polled.
    let config = |sink: &str| {
        let sources = if sink == "first" {
            source("in", &queue, "")
        } else {
            format!("{}{}", source("in", &queue, ""), source("added", &added, ""))
        };
        format!(
            "{}{}{}{}\n[[routes]]\nname = \"all\"\nsinks = [\"{sink}\"]\n",
            config_head(&aws.endpoint),
            sources,
            file_sink("first", &first),
            file_sink("second", &second)
        )
    };
    daemon.start(&config("first"));
    let address = listen_address(&daemon).await;
    let count = async |path: &std::path::Path, n: usize| {
        eventually(&format!("{n} lines in {}", path.display()), Duration::from_secs(20), async || {
            let got = lines(path).len();
            if got == n { Ok(()) } else { Err(format!("{got} lines")) }
        })
        .await;
    };
    let reloaded = async |result: &str, times: u32| {
        eventually(&format!("{times} reloads with result {result}"), Duration::from_secs(20), async || {
            let (_, text) = get(&format!("http://{address}/metrics")).await;
            let n = metric(&text, "sesroute_config_reloads_total", &[("result", result)]).unwrap_or(0.0);
            if n >= f64::from(times) { Ok(()) } else { Err(format!("{n}")) }
        })
        .await;
    };

    aws.send(&queue, &bounce_from("a@acme.test", "reload-1")).await;
    count(&first, 1).await;

    std::fs::write(daemon.path("config.toml"), config("second")).unwrap();
    daemon.signal("HUP");
    reloaded("ok", 1).await;
    aws.send(&queue, &bounce_from("a@acme.test", "reload-2")).await;
    count(&second, 1).await;
    aws.send(&added, &bounce_from("a@acme.test", "reload-added")).await;
    count(&second, 2).await;

    std::fs::write(daemon.path("config.toml"), config("nowhere")).unwrap();
    daemon.signal("HUP");
    reloaded("error", 1).await;
    aws.send(&queue, &bounce_from("a@acme.test", "reload-3")).await;
    count(&second, 3).await;
    daemon.stop().await;

    assert_eq!(lines(&first).len(), 1, "the first sink only got what came before the reload");
    let failure = daemon.log().into_iter().find(|line| line["message"] == "reload failed: the running config stays");
    let failure = failure.expect("the failed reload is logged");
    assert!(failure["error"].as_str().unwrap_or_default().contains("unknown sink \"nowhere\""), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_failures_are_counted_by_source_mode_and_reason_with_a_pinned_certificate() {
    use crate::signature::{TEST_CERT_URL, signed, test_pem};

    let Some(aws) = Aws::connect("ops-signatures").await else { return };
    let (strict, lenient) = (aws.create_queue("strict").await, aws.create_queue("lenient").await);
    let mut daemon = Daemon::new();
    let (team, dead, pem) = (daemon.path("team.jsonl"), daemon.path("dead.jsonl"), daemon.path("sns.pem"));
    std::fs::write(&pem, test_pem()).expect("the pinned certificate is written");
    let topics = "topics = [\"arn:aws:sns:eu-west-1:123456789012:ses-*\"]";
    let config = format!(
        "dead_letter = \"dead\"\n{}[sns]\nfetch_certs = false\nsigning_certs = {{ {TEST_CERT_URL:?} = {:?} }}\n{}{}{}{}\n[[routes]]\nname = \"team\"\nsinks = [\"team\"]\n",
        config_head(&aws.endpoint),
        pem.display().to_string(),
        source("strict", &strict, &format!("signature = \"require\"\n{topics}")),
        source("lenient", &lenient, &format!("signature = \"log\"\n{topics}")),
        file_sink("team", &team),
        file_sink("dead", &dead),
    );
    daemon.start(&config);
    let base = format!("http://{}", listen_address(&daemon).await);

    let genuine = signed("Notification", &bounce_from("billing@acme.test", "sig-genuine"), None);
    let forged = signed("Notification", &bounce_from("billing@acme.test", "sig-forged"), None)
        .replace("billing@acme.test", "ceo@acme.test");
    let unsigned = bounce_from("billing@acme.test", "sig-bare");
    for body in [&genuine, &forged, &unsigned] {
        aws.send(&strict, body).await;
        aws.send(&lenient, body).await;
    }
    // strict: the genuine one; lenient: all three, routed anyway.
    eventually("4 lines in the team sink", Duration::from_secs(20), async || {
        let n = lines(&team).len();
        if n == 4 { Ok(()) } else { Err(format!("{n} lines")) }
    })
    .await;
    eventually("2 dead letters", Duration::from_secs(20), async || {
        let n = lines(&dead).len();
        if n == 2 { Ok(()) } else { Err(format!("{n} lines")) }
    })
    .await;
    let text = eventually("the refusals in /metrics", Duration::from_secs(20), async || {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let name = "sesroute_signature_failures_total";
        let wanted = [
            ("strict", "require", "bad-signature"),
            ("strict", "require", "not-signed"),
            ("lenient", "log", "bad-signature"),
            ("lenient", "log", "not-signed"),
        ];
        let missing: Vec<_> = wanted
            .iter()
            .filter(|(source, mode, reason)| {
                metric(&text, name, &[("source", source), ("mode", mode), ("reason", reason)]) != Some(1.0)
            })
            .collect();
        if missing.is_empty() { Ok(text) } else { Err(format!("not yet 1: {missing:?}")) }
    })
    .await;
    assert_eq!(
        metric(&text, "sesroute_messages_total", &[("source", "strict"), ("outcome", "refused")]),
        Some(2.0),
        "{text}"
    );
    let dead_letters = std::fs::read_to_string(&dead).expect("the dead-letter file");
    assert!(!dead_letters.contains("sig-genuine"), "the genuine envelope is not a dead letter");
    let log = std::fs::read_to_string(daemon.path("daemon.log")).expect("the daemon's log");
    assert!(!log.contains("SimpleNotificationService-0123abcd"), "no refused body is echoed into the log");
    daemon.stop().await;
}
