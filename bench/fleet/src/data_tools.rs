//! `--data-tools ROWS`: the tenant data tools side by side in one run, on a tenant holding
//! ROWS rows: creating an empty tenant (the reference), `clone_tenant`, `export_tenant` (to
//! memory) and `import_tenant`, each timed `REPEAT` times (median), for the one-table notes
//! schema and for the 39-table fixture schema (the rows in its `users` table).

use std::io::Cursor;
use std::time::Instant;

use anyhow::Result;
use tenantry_sqlx::{MigrationSet, NewTenant, Provision};

use crate::report::stats;
use crate::setup::{BenchDb, fixtures, handle};

/// Runs per operation.
const REPEAT: usize = 5;

/// Times every data tool on `rows` rows, for both schemas, and prints one line per operation.
pub(crate) async fn run(admin_url: &str, rows: i64) -> Result<()> {
    println!("# tenantry data tools benchmark: {rows} rows, median of {REPEAT} runs");
    let notes = MigrationSet::from_sql(&[(
        1,
        "notes",
        "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         title TEXT NOT NULL, body TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )]);
    let fill_notes = "INSERT INTO notes (title, body) SELECT 'note ' || g, repeat('lorem ipsum ', 8) \
                      FROM generate_series(1, $1) g";
    schema_run(admin_url, "one-table notes", notes, None, fill_notes, rows).await?;
    let fixture = MigrationSet::from_dir(fixtures().join("tenant")).await?;
    let fill_users = "INSERT INTO users (email, display_name, tags, prefs, balance) \
                      SELECT 'u' || g || '@example.com', 'user ' || g, ARRAY['a', 'b'], \
                      jsonb_build_object('n', g), g FROM generate_series(1, $1) g";
    schema_run(
        admin_url,
        "39-table fixture",
        fixture,
        Some(fixtures().join("shared")),
        fill_users,
        rows,
    )
    .await
}

async fn schema_run(
    admin_url: &str,
    label: &str,
    set: MigrationSet,
    shared: Option<std::path::PathBuf>,
    fill: &'static str,
    rows: i64,
) -> Result<()> {
    let db = BenchDb::create(admin_url, "datatools").await?;
    let t = handle(&db.url(), shared, set, 4).await?;
    t.fleet().migrate_shared().await?;
    t.fleet()
        .refresh_template("default")
        .await?
        .map_err(anyhow::Error::msg)?;
    t.admin()
        .create_tenant(NewTenant::new("src", "src.example.com").provision(Provision::Clone))
        .await?;
    let mut tx = t.admin().begin_schema("src").await?;
    sqlx::query(fill).bind(rows).execute(&mut tx).await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(t.raw_pool()).await?;

    let (mut create, mut clone, mut export, mut import) = (vec![], vec![], vec![], vec![]);
    let mut archive = Vec::new();
    for i in 0..REPEAT {
        // Interleaved, so that load on the machine weighs on every operation alike.
        let start = Instant::now();
        t.admin()
            .create_tenant(
                NewTenant::new(format!("empty{i}"), format!("empty{i}.example.com"))
                    .provision(Provision::Clone),
            )
            .await?;
        create.push(ms(start));
        let start = Instant::now();
        let report = t
            .admin()
            .clone_tenant(
                "src",
                NewTenant::new(format!("copy{i}"), format!("copy{i}.example.com")),
            )
            .await?;
        clone.push(ms(start));
        assert!(report.rows() >= rows as u64);
        let start = Instant::now();
        let (bytes, _) = t.admin().export_tenant("src", Vec::new()).await?;
        export.push(ms(start));
        let start = Instant::now();
        t.admin()
            .import_tenant(
                Cursor::new(bytes.clone()),
                NewTenant::new(format!("imp{i}"), format!("imp{i}.example.com")),
            )
            .await?;
        import.push(ms(start));
        archive = bytes;
    }
    let (create, clone, export, import) =
        (stats(create), stats(clone), stats(export), stats(import));
    println!("{label}, {rows} rows in the source:");
    println!(
        "  create an empty tenant (template clone): {:.1} ms",
        create.median
    );
    println!(
        "  clone_tenant:  {:.1} ms ({:.2}x the empty creation)",
        clone.median,
        clone.median / create.median
    );
    println!(
        "  export_tenant: {:.1} ms ({:.2}x), archive {} bytes",
        export.median,
        export.median / create.median,
        archive.len()
    );
    println!(
        "  import_tenant: {:.1} ms ({:.2}x)",
        import.median,
        import.median / create.median
    );
    t.close().await;
    db.drop_now().await?;
    Ok(())
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
