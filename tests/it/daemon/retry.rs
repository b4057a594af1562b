//! A sink that fails and later recovers: the message stays in its queue
//! meanwhile, and once the failing sink has it, it is deleted, without being
//! sent again to the sink that had it from the start.

use std::time::Duration;

use super::harness::{Aws, Daemon, config_head, eventually, file_sink, message_ids, ses_message_id, source};
use crate::{read, samples};

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_sink_keeps_the_message_until_it_recovers_and_only_it_is_retried() {
    let Some(aws) = Aws::connect("retry").await else { return };
    let queue = aws.create_queue("in").await;
    let target_name = aws.name("target");
    let target = aws.queue_url(&target_name);
    let body = read(&samples().join("bodies/01-bounce-permanent-general-bare.json"));
    let id = ses_message_id(&body);

    let mut daemon = Daemon::new();
    let copy = daemon.path("copy.jsonl");
    daemon.start(&format!(
        r#"{}{}{}
[sinks.forward]
type = "sqs"
queue_url = "{target}"

[[routes]]
name = "copy"
sinks = ["copy"]
continue = true

[[routes]]
name = "forward"
sinks = ["forward"]
"#,
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("copy", &copy),
    ));
    aws.send(&queue, &body).await;

    eventually("the message in the file sink", Duration::from_secs(15), async || {
        let written = message_ids(&copy);
        if written.is_empty() { Err("no line".to_owned()) } else { Ok(()) }
    })
    .await;
    assert_eq!(message_ids(&copy), [id.as_str()]);
    // The forward sink's queue does not exist: the message waits (10 s before
    // its first retry), received and not deleted.
    for _ in 0..4 {
        let depth = aws.depth(&queue).await;
        assert_eq!((depth.visible, depth.in_flight), (0, 1), "while the forward sink fails");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    assert_eq!(aws.create_queue_named(&target_name).await, target, "fauxqs's queue URL, as predicted");
    eventually("the message forwarded and deleted", Duration::from_secs(60), async || {
        let (source, forwarded) = (aws.depth(&queue).await, aws.depth(&target).await);
        if source.total() == 0 && forwarded.total() == 1 {
            Ok(())
        } else {
            Err(format!("source {source:?}, target {forwarded:?}"))
        }
    })
    .await;
    let forwarded = aws.receive_all(&target, 1).await;
    assert_eq!(
        forwarded.iter().map(|m| ses_message_id(m.body().unwrap_or_default())).collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert_eq!(message_ids(&copy), [id.as_str()], "the file sink had it already: not written again");

    daemon.stop().await;
    let stats = daemon.last_stats();
    assert_eq!(
        (stats["received"].as_u64(), stats["retried"].as_u64(), stats["delivered"].as_u64()),
        (Some(2), Some(1), Some(1)),
        "{stats}"
    );
}

/// Sinks are numbered by their names' order: a reload that adds `a-new`
/// renumbers `copy` and `forward`. What was delivered before the reload is
/// still known by name, and the new sink gets the message too.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_a_reload_that_renumbers_the_sinks_skips_only_the_sinks_that_have_it() {
    let Some(aws) = Aws::connect("retry_reload").await else { return };
    let queue = aws.create_queue("in").await;
    let target_name = aws.name("target");
    let target = aws.queue_url(&target_name);
    let body = read(&samples().join("bodies/01-bounce-permanent-general-bare.json"));
    let id = ses_message_id(&body);

    let mut daemon = Daemon::new();
    let (copy, new) = (daemon.path("copy.jsonl"), daemon.path("new.jsonl"));
    let config = |extra_sink: &str, sinks: &str| {
        format!(
            "{}{}{}{extra_sink}\n[sinks.forward]\ntype = \"sqs\"\nqueue_url = \"{target}\"\n\n[[routes]]\nname = \"all\"\nsinks = [{sinks}]\n",
            config_head(&aws.endpoint),
            source("in", &queue, ""),
            file_sink("copy", &copy),
        )
    };
    daemon.start(&config("", "\"copy\", \"forward\""));
    aws.send(&queue, &body).await;
    eventually("the first try", Duration::from_secs(15), async || {
        let failed = daemon.log().iter().any(|l| l["message"] == "not delivered everywhere: will retry");
        if failed { Ok(()) } else { Err("no retry logged yet".to_owned()) }
    })
    .await;

    std::fs::write(daemon.path("config.toml"), config(&file_sink("a-new", &new), "\"a-new\", \"copy\", \"forward\""))
        .expect("the new config is written");
    daemon.signal("HUP");
    eventually("the reload", Duration::from_secs(10), async || {
        let reloaded = daemon.log().iter().any(|l| l["message"] == "config reloaded");
        if reloaded { Ok(()) } else { Err("not reloaded yet".to_owned()) }
    })
    .await;
    aws.create_queue_named(&target_name).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(60)).await;
    daemon.stop().await;

    assert_eq!(message_ids(&copy), [id.as_str()], "the sink that had it is not sent it again");
    assert_eq!(message_ids(&new), [id.as_str()], "the sink added by the reload gets it");
    assert_eq!(aws.depth(&target).await.total(), 1, "the recovered sink gets it once");
}
