//! `tenantry nodes`, `tenantry tenant move`, `tenantry rebalance` and `tenantry tenant show` on a
//! real Citus cluster (coordinator + 2 workers), and `nodes` refused on plain PostgreSQL.

mod cli_support;

use cli_support::*;
use serde_json::Value;
use tenantry_testing::{CITUS_INSTALL_HINT, CitusCluster, skip};

fn json(out: &Out) -> Value {
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("JSON: {e}: {out:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_move_show_and_rebalance_on_citus() {
    let Some(citus) = CitusCluster::start(2).await else {
        skip(CITUS_INSTALL_HINT);
        return;
    };
    let env = Env::new().await;
    // Several statements in one file: split for Citus.
    env.write(
        "tenant/2_more.sql",
        "CREATE TABLE tags (id int PRIMARY KEY, name text); CREATE INDEX tags_name ON tags (name);",
    );
    let url = citus.url();
    let run = |args: &[&str]| {
        env.run_raw(
            &[
                &[
                    "--shared-migrations",
                    "shared",
                    "--tenant-migrations",
                    "tenant",
                ],
                args,
            ]
            .concat(),
            Some(&url),
        )
    };
    run(&["migrate"]).ok();
    for t in ["c0", "c1", "c2", "c3"] {
        run(&["tenant", "create", t, "--domain", &format!("{t}.localhost")]).ok();
    }

    let nodes = json(&run(&["nodes", "--json"]));
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(nodes[0]["role"], "coordinator");
    assert_eq!(nodes[0]["tenants"], 0);
    let total: i64 = nodes.iter().map(|n| n["tenants"].as_i64().unwrap()).sum();
    assert_eq!(total, 4);
    let table = run(&["nodes"]).ok().to_owned();
    assert!(
        table.contains("coordinator") && table.contains("worker"),
        "{table}"
    );

    let show = json(&run(&["tenant", "show", "c0", "--json"]));
    let at = show["node"]
        .as_str()
        .expect("show says where c0 lives")
        .to_owned();
    let ports = citus.worker_ports();
    let other = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .find(|n| *n != at)
        .unwrap();
    let out = run(&["tenant", "move", "c0", "--to", &other]);
    assert!(
        out.ok().contains(&format!("moved from {at} to {other}")),
        "{out:#?}"
    );
    let show = json(&run(&["tenant", "show", "c0", "--json"]));
    assert_eq!(show["node"], other.as_str());
    let text = run(&["tenant", "show", "c0"]).ok().to_owned();
    assert!(text.contains(&format!("node:           {other}")), "{text}");
    let again = run(&["tenant", "move", "c0", "--to", &other]);
    assert!(again.ok().contains("already on"), "{again:#?}");

    // Bad targets: clear errors, exit 1, nothing moved.
    let msg = run(&["tenant", "move", "c0", "--to", "127.0.0.1:1"]).fails_with(1);
    assert!(msg.contains("no Citus node 127.0.0.1:1"), "{msg}");
    let msg = run(&["tenant", "move", "c0", "--to", "nowhere"]).fails_with(1);
    assert!(msg.contains("HOST:PORT"), "{msg}");
    let msg = run(&["tenant", "move", "nosuch", "--to", &other]).fails_with(1);
    assert!(msg.contains("nosuch"), "{msg}");

    // Everything onto one worker, then rebalance.
    for t in ["c0", "c1", "c2", "c3"] {
        run(&["tenant", "move", t, "--to", &other]).ok();
    }
    let report = json(&run(&["rebalance", "--json"]));
    assert_eq!(report["moves"].as_array().unwrap().len(), 2, "{report}");
    let nodes = json(&run(&["nodes", "--json"]));
    let per: Vec<i64> = nodes.as_array().unwrap()[1..]
        .iter()
        .map(|n| n["tenants"].as_i64().unwrap())
        .collect();
    assert_eq!(per, [2, 2], "rebalanced: {nodes}");
    let again = run(&["rebalance"]);
    assert!(again.ok().contains("balanced"), "{again:#?}");
}

#[tokio::test]
async fn nodes_on_plain_postgres_says_citus_is_needed() {
    let env = Env::new().await;
    env.setup(&[]);
    let msg = env.run(&["nodes"]).fails_with(1);
    assert!(msg.contains("not a Citus coordinator"), "{msg}");
}
