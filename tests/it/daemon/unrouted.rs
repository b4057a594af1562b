//! Bodies that no route takes, and bodies that are not feedback, are deleted
//! without reaching a sink.

use std::time::Duration;

use super::harness::{Aws, Daemon, config_head, file_sink, lines, source};
use crate::{read, samples};

#[tokio::test(flavor = "multi_thread")]
async fn unrouted_and_ignored_bodies_are_deleted_and_reach_no_sink() {
    let Some(aws) = Aws::connect("unrouted").await else { return };
    let queue = aws.create_queue("in").await;
    for sample in ["01-bounce-permanent-general-bare.json", "36-sns-subscription-confirmation.json"] {
        aws.send(&queue, &read(&samples().join("bodies").join(sample))).await;
    }

    let mut daemon = Daemon::new();
    let nobody = daemon.path("nobody.jsonl");
    daemon.start(&format!(
        r#"{}{}{}
[[routes]]
name = "nobody"
sinks = ["nobody"]

[routes.match]
source = ["nobody@nowhere.test"]
"#,
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("nobody", &nobody),
    ));
    aws.wait_for_total(&queue, 0, Duration::from_secs(15)).await;
    daemon.stop().await;

    assert_eq!(lines(&nobody), [] as [serde_json::Value; 0], "nothing reaches the sink");
    let stats = daemon.last_stats();
    assert_eq!((stats["unrouted"].as_u64(), stats["ignored"].as_u64()), (Some(1), Some(1)), "{stats}");
    assert_eq!(stats["delivered"].as_u64(), Some(0), "{stats}");
}
