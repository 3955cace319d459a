//! Tests of `plot_results` on small results folders built in temporary directories.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::plot_results;

const PLOT: &str = "[plot]\nx = \"iteration\"\ny = [\"objective\", \"gap\"]\nlogy = true\n";
const SWEEP: &str = "[sweep]\n\"optimizer.sigma0\" = [2, 4, 16]\n";
const METRICS: &str = "iteration,objective,gap,wall_s\n0,10,1,0.1\n1,5,0.5,0.2\n2,2,0.1,0.3\n";

/// Writes run folder `dir/id` with the given spec tables, status, sweep point and metrics.
fn write_run(dir: &Path, id: &str, tables: &str, status: &str, point: &str, metrics: &str) {
    let run = dir.join(id);
    fs::create_dir_all(&run).unwrap();
    let spec = format!("name = \"fig\"\n\n[train]\niterations = 3\n\n{tables}");
    fs::write(run.join("spec.toml"), spec).unwrap();
    let summary = format!(r#"{{"status": "{status}", "point": {point}, "wall_s": 1.5}}"#);
    fs::write(run.join("summary.json"), summary).unwrap();
    fs::write(run.join("metrics.csv"), metrics).unwrap();
}

/// A folder of three runs sweeping `optimizer.sigma0`, stored out of numeric order.
fn sigma_sweep() -> TempDir {
    let dir = TempDir::new().unwrap();
    let tables = format!("{PLOT}\n{SWEEP}");
    for (id, sigma, status) in [
        ("a", 16, "diverged"),
        ("b", 2, "completed"),
        ("c", 4, "completed"),
    ] {
        let point = format!(r#"{{"optimizer.sigma0": {sigma}}}"#);
        write_run(dir.path(), id, &tables, status, &point, METRICS);
    }
    dir
}

/// The error `plot_results` returns for `dir`, with its causes.
fn error_of(dir: &TempDir) -> String {
    format!("{:#}", plot_results(dir.path()).unwrap_err())
}

/// The polylines of an SVG drawn in `colour` (one per curve segment and legend entry).
fn polylines_in(svg: &str, colour: &str) -> usize {
    svg.match_indices("<polyline")
        .filter(|&(at, _)| {
            let end = svg[at..].find("/>").map_or(svg.len(), |end| at + end);
            svg[at..end].contains(&format!("stroke=\"{colour}\""))
        })
        .count()
}

/// The texts of an SVG, in drawing order.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|tag| {
            let body = &tag[tag.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim())
        })
        .collect()
}

/// Positions of `labels` among the texts of `svg`, which must all be there.
fn positions(svg: &str, labels: &[&str]) -> Vec<usize> {
    let texts = texts(svg);
    labels
        .iter()
        .map(|label| {
            let position = texts.iter().position(|text| text == label);
            position.unwrap_or_else(|| panic!("no text `{label}` among {texts:?}"))
        })
        .collect()
}

#[test]
fn writes_a_png_and_an_svg_per_y_column() {
    let dir = sigma_sweep();
    let written = plot_results(dir.path()).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|path| path.file_name().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "fig-objective.png",
            "fig-objective.svg",
            "fig-gap.png",
            "fig-gap.svg"
        ]
    );
    for path in &written {
        assert_eq!(path.parent(), Some(dir.path()));
    }
    assert!(fs::read(&written[0]).unwrap().starts_with(b"\x89PNG"));
    let leftovers = fs::read_dir(dir.path())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0, "temporary files left behind");
}

#[test]
fn draws_one_curve_per_run() {
    let dir = sigma_sweep();
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-gap.svg")).unwrap();
    // Each curve is one segment plus its legend entry, in the first three colours.
    for colour in ["#1F77B4", "#FF7F0E", "#2CA02C"] {
        assert_eq!(polylines_in(&svg, colour), 2, "colour {colour}");
    }
    assert_eq!(polylines_in(&svg, "#D62728"), 0);
    positions(&svg, &["fig", "iteration", "gap"]);
}

#[test]
fn sorts_curves_numerically_and_marks_unfinished_runs() {
    let dir = sigma_sweep();
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-objective.svg")).unwrap();
    let at = positions(
        &svg,
        &["sigma0 = 2", "sigma0 = 4", "sigma0 = 16 (diverged)"],
    );
    assert!(
        at.windows(2).all(|pair| pair[0] < pair[1]),
        "legend order {at:?}"
    );
}

#[test]
fn sorts_string_values_as_strings() {
    let dir = TempDir::new().unwrap();
    let tables = format!("{PLOT}\n[sweep]\n\"optimizer.k0\" = [\"auto\", 10, 9]\n");
    for (id, k0) in [("a", "\"auto\""), ("b", "10"), ("c", "9")] {
        let point = format!(r#"{{"optimizer.k0": {k0}}}"#);
        write_run(dir.path(), id, &tables, "completed", &point, METRICS);
    }
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-gap.svg")).unwrap();
    let at = positions(&svg, &["k0 = 10", "k0 = 9", "k0 = auto"]);
    assert!(
        at.windows(2).all(|pair| pair[0] < pair[1]),
        "legend order {at:?}"
    );
}

#[test]
fn labels_a_run_without_sweep_by_its_folder() {
    let dir = TempDir::new().unwrap();
    write_run(
        dir.path(),
        "20240101-only",
        PLOT,
        "completed",
        "{}",
        METRICS,
    );
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-objective.svg")).unwrap();
    positions(&svg, &["20240101-only"]);
}

#[test]
fn a_single_run_beside_a_sweep_follows_it_labelled_by_its_folder() {
    let dir = sigma_sweep();
    let tables = format!("{PLOT}\n{SWEEP}");
    write_run(dir.path(), "sigma0=8", &tables, "completed", "{}", METRICS);
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-objective.svg")).unwrap();
    let at = positions(
        &svg,
        &[
            "sigma0 = 2",
            "sigma0 = 4",
            "sigma0 = 16 (diverged)",
            "sigma0=8",
        ],
    );
    assert!(at.windows(2).all(|w| w[0] < w[1]), "legend order {at:?}");
}

#[test]
fn skips_staging_folders_and_runs_without_summary() {
    let dir = sigma_sweep();
    fs::create_dir(dir.path().join(".staging-d")).unwrap();
    fs::write(dir.path().join(".staging-d/spec.toml"), "not toml [").unwrap();
    fs::write(dir.path().join(".staging-d/summary.json"), "{").unwrap();
    fs::create_dir(dir.path().join("e-unfinished")).unwrap();
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-gap.svg")).unwrap();
    assert_eq!(polylines_in(&svg, "#D62728"), 0, "a fourth curve was drawn");
}

#[test]
fn log_axis_splits_curves_at_unplottable_points() {
    let dir = TempDir::new().unwrap();
    let tables = format!("{PLOT}\n{SWEEP}");
    let gappy =
        "iteration,objective,gap\n0,1,1\n1,2,NaN\n2,3,0.5\n3,4,0.2\n4,5,0\n5,6,inf\n6,7,0.1\n";
    let hopeless = "iteration,objective,gap\n0,1,0\n1,2,-1\n2,3,NaN\n";
    write_run(
        dir.path(),
        "a",
        &tables,
        "completed",
        r#"{"optimizer.sigma0": 2}"#,
        gappy,
    );
    write_run(
        dir.path(),
        "b",
        &tables,
        "failed",
        r#"{"optimizer.sigma0": 4}"#,
        hopeless,
    );
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-gap.svg")).unwrap();
    // Segments [1], [0.5, 0.2] and [0.1], plus the legend entry.
    assert_eq!(polylines_in(&svg, "#1F77B4"), 4);
    // Nothing to draw, but still in the legend.
    assert_eq!(polylines_in(&svg, "#FF7F0E"), 1);
    positions(&svg, &["sigma0 = 4 (failed)"]);
}

#[test]
fn draws_a_failed_run_without_metrics() {
    let dir = sigma_sweep();
    fs::remove_file(dir.path().join("a/metrics.csv")).unwrap();
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-gap.svg")).unwrap();
    positions(&svg, &["sigma0 = 16 (diverged)"]);
}

#[test]
fn missing_column_names_the_file_and_its_columns() {
    let dir = sigma_sweep();
    fs::write(
        dir.path().join("c/metrics.csv"),
        "iteration,objective\n0,1\n",
    )
    .unwrap();
    let error = error_of(&dir);
    assert!(error.contains("c/metrics.csv"), "{error}");
    assert!(
        error.contains("`gap`") && error.contains("iteration, objective"),
        "{error}"
    );
}

#[test]
fn missing_plot_table_shows_an_example() {
    let dir = TempDir::new().unwrap();
    write_run(
        dir.path(),
        "a",
        SWEEP,
        "completed",
        r#"{"optimizer.sigma0": 2}"#,
        METRICS,
    );
    let error = error_of(&dir);
    assert!(error.contains("no [plot] table"), "{error}");
    assert!(
        error.contains("y = [\"objective\", \"gap\"]") && error.contains("logy = true"),
        "{error}"
    );
}

#[test]
fn disagreeing_plot_tables_name_two_runs() {
    let dir = sigma_sweep();
    let other = format!("{}\n{SWEEP}", PLOT.replace("logy = true", "logy = false"));
    write_run(
        dir.path(),
        "c",
        &other,
        "completed",
        r#"{"optimizer.sigma0": 4}"#,
        METRICS,
    );
    let error = error_of(&dir);
    assert!(
        error.contains("disagree") && error.contains("[plot]"),
        "{error}"
    );
    assert!(
        error.contains(&dir.path().join("a").display().to_string()),
        "{error}"
    );
    assert!(
        error.contains(&dir.path().join("c").display().to_string()),
        "{error}"
    );
}

#[test]
fn several_sweep_keys_need_a_series() {
    let dir = TempDir::new().unwrap();
    let tables = format!("{PLOT}\n[sweep]\n\"optimizer.sigma0\" = [2]\n\"train.seed\" = [1]\n");
    let point = r#"{"optimizer.sigma0": 2, "train.seed": 1}"#;
    write_run(dir.path(), "a", &tables, "completed", point, METRICS);
    let error = error_of(&dir);
    assert!(
        error.contains("optimizer.sigma0, train.seed") && error.contains("series"),
        "{error}"
    );

    let tables = tables.replace("logy = true", "logy = true\nseries = \"optimizer.sigma0\"");
    write_run(dir.path(), "a", &tables, "completed", point, METRICS);
    plot_results(dir.path()).unwrap();
}

#[test]
fn an_empty_folder_is_an_error() {
    let dir = TempDir::new().unwrap();
    assert!(error_of(&dir).contains("no runs"));
}

/// Writes a completed Table 3 run `dir/<name>/seed=<seed>` of ResNet-34 on CIFAR-10 with
/// `optimizer`, whose best test accuracy is `accuracy`.
fn write_table3_run(dir: &Path, name: &str, optimizer: &str, seed: i64, accuracy: f64) {
    let run = (("table3", "resnet34", "cifar10"), name, optimizer, seed);
    write_vision_run(dir, run, accuracy);
}

/// A completed run of `(table, model, dataset)` whose test accuracy peaks at `accuracy`
/// (epoch 1 of 0..=2) and whose training loss ends at 1 − `accuracy`.
fn write_vision_run(
    dir: &Path,
    ((table, model, dataset), name, optimizer, seed): ((&str, &str, &str), &str, &str, i64),
    accuracy: f64,
) {
    let run = dir.join(name).join(format!("seed={seed}"));
    fs::create_dir_all(&run).unwrap();
    let spec = format!(
        "name = \"{name}\"\nseed = {seed}\n\n[data]\nkind = \"{dataset}\"\n\n[model]\n\
         kind = \"{model}\"\n\n[optimizer]\nname = \"{optimizer}\"\n\n[plot]\nx = \"epoch\"\n\
         y = [\"test_acc\"]\ntable = \"{table}\"\n"
    );
    fs::write(run.join("spec.toml"), spec).unwrap();
    let loss = 1.0 - accuracy;
    let summary = format!(
        r#"{{"status": "completed", "point": {{"seed": {seed}}}, "last": {{"train_loss": {loss}}}}}"#
    );
    fs::write(run.join("summary.json"), summary).unwrap();
    let metrics = format!("epoch,train_loss,test_acc\n0,2,0.1\n1,1,{accuracy}\n2,{loss},0.2\n");
    fs::write(run.join("metrics.csv"), metrics).unwrap();
}

/// Table 3 runs where SGD does better with SISA's schedule (seeds 2 and 3: 94 %) than with
/// its default one (seeds 1 and 2: 91 %; both together would be 92.5 %), and Adam better
/// with its default one (89 % against 85 %).
fn table3_with_two_schedules() -> TempDir {
    let dir = TempDir::new().unwrap();
    for (name, optimizer, seed, accuracy) in [
        ("table3-resnet34-sisa", "sisa", 1, 0.95),
        ("table3-resnet34-sgd", "sgd", 1, 0.90),
        ("table3-resnet34-sgd", "sgd", 2, 0.92),
        ("table3-resnet34-sgd-sisa-schedule", "sgd", 2, 0.93),
        ("table3-resnet34-sgd-sisa-schedule", "sgd", 3, 0.95),
        ("table3-resnet34-adam", "adam", 1, 0.89),
        ("table3-resnet34-adam-sisa-schedule", "adam", 1, 0.85),
    ] {
        write_table3_run(dir.path(), name, optimizer, seed, accuracy);
    }
    dir
}

#[test]
fn table3_reports_the_better_schedule_of_each_cell_and_marks_sisas() {
    let dir = table3_with_two_schedules();
    super::tables::write(&super::table3::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("table3.csv")).unwrap();
    assert_eq!(
        csv,
        "model,dataset,algorithm,schedule,seeds,mean,std,paper_mean,paper_std,difference,\
         disagrees\n\
         resnet34,cifar10,sisa,default,1,95.0000,0.0000,95.04,,-0.0400,true\n\
         resnet34,cifar10,sgd,sisa,2,94.0000,1.4142,94.65,,-0.6500,false\n\
         resnet34,cifar10,adam,default,1,89.0000,0.0000,94.69,,-5.6900,true\n"
    );
    let md = fs::read_to_string(dir.path().join("table3.md")).unwrap();
    assert!(
        md.contains(
            "| resnet34 | cifar10 | 95.00 ± 0.00 (n = 1) [95.04] Δ -0.04 ≠ | 94.00 ± 1.41 \
             (n = 2) † [94.65] Δ -0.65 | – [94.33] | 89.00 ± 0.00 (n = 1) [94.69] Δ -5.69 ≠ |"
        ),
        "{md}"
    );
    assert!(md.contains("† where SISA's schedule won"), "{md}");
}

#[test]
fn figure1_draws_every_seed_of_the_reported_schedule() {
    let dir = table3_with_two_schedules();
    let rows = super::by_optimizer::rows(&super::table3::TABLE, dir.path()).unwrap();
    let run = |name: &str, seed: i64| dir.path().join(name).join(format!("seed={seed}"));
    assert_eq!(
        rows,
        [(
            vec!["resnet34".to_string(), "cifar10".to_string()],
            vec![
                ("sisa".to_string(), vec![run("table3-resnet34-sisa", 1)]),
                (
                    "sgd".to_string(),
                    vec![
                        run("table3-resnet34-sgd-sisa-schedule", 2),
                        run("table3-resnet34-sgd-sisa-schedule", 3)
                    ]
                ),
                ("adam".to_string(), vec![run("table3-resnet34-adam", 1)]),
            ]
        )]
    );
    let written = super::table3::FIGURE1.write(dir.path()).unwrap();
    assert_eq!(written.len(), 4, "{written:?}");
}

#[test]
fn table2_averages_all_runs_of_a_cell_whatever_their_names() {
    let dir = TempDir::new().unwrap();
    for (name, accuracy) in [("a", 0.5), ("b", 0.7)] {
        let run = dir.path().join(name);
        fs::create_dir_all(&run).unwrap();
        let spec = format!(
            "name = \"{name}\"\n\n[data]\nkind = \"mnist\"\n\n[data.partition]\nlabels = 1\n\n\
             [optimizer]\nname = \"fedavg\"\n\n[plot]\ny = [\"test_acc\"]\ntable = \"table2\"\n"
        );
        fs::write(run.join("spec.toml"), spec).unwrap();
        let summary = format!(r#"{{"status": "completed", "last": {{"test_acc": {accuracy}}}}}"#);
        fs::write(run.join("summary.json"), summary).unwrap();
    }
    super::tables::write(&super::table2::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("table2.csv")).unwrap();
    assert_eq!(
        csv,
        "dataset,partition,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees\n\
         mnist,1-Label,fedavg,2,60.0000,14.1421,53.19,0.21,6.8100,false\n"
    );
}

#[test]
fn figure5_draws_a_loss_figure_per_model_and_tabulates_the_last_losses() {
    let dir = TempDir::new().unwrap();
    let imagenet = |model| ("figure5", model, "image_folder");
    for (row, name, optimizer, seed, accuracy) in [
        (imagenet("resnet18_imagenet"), "f5-r-sgd", "sgd", 1, 0.5),
        (imagenet("resnet18_imagenet"), "f5-r-sisa", "sisa", 2, 0.75),
        (imagenet("resnet18_imagenet"), "f5-r-sisa", "sisa", 1, 0.25),
        (imagenet("vit_b_16"), "f5-v-adam", "adam", 1, 0.5),
    ] {
        write_vision_run(dir.path(), (row, name, optimizer, seed), accuracy);
    }
    super::tables::write(&super::figure5::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("figure5.csv")).unwrap();
    // The paper's panel order (ViT first), its legend order (SISA first).
    assert_eq!(
        csv,
        "model,dataset,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees\n\
         vit_b_16,image_folder,adam,1,0.5000,0.0000,,,,\n\
         resnet18_imagenet,image_folder,sisa,2,0.5000,0.3536,,,,\n\
         resnet18_imagenet,image_folder,sgd,1,0.5000,0.0000,,,,\n"
    );
    let md = fs::read_to_string(dir.path().join("figure5.md")).unwrap();
    assert!(md.contains("| 0.5000 ± 0.3536 (n = 2) |"), "{md}");
    let rows = super::by_optimizer::rows(&super::figure5::TABLE, dir.path()).unwrap();
    let run = |name: &str, seed: i64| dir.path().join(name).join(format!("seed={seed}"));
    assert_eq!(
        rows[1].1[0],
        (
            "sisa".to_string(),
            vec![run("f5-r-sisa", 1), run("f5-r-sisa", 2)]
        )
    );
    let written = super::figure5::FIGURE5.write(dir.path()).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "figure5-vit_b_16-image_folder-train_loss.png",
            "figure5-vit_b_16-image_folder-train_loss.svg",
            "figure5-resnet18_imagenet-image_folder-train_loss.png",
            "figure5-resnet18_imagenet-image_folder-train_loss.svg",
        ]
    );
}

/// Writes completed run folder `run` of `spec`, whose metrics give `column` the value
/// `values[e]` at epoch e (and its summary the last one).
fn write_epoch_run(run: &Path, spec: &str, column: &str, values: &[f64]) {
    fs::create_dir_all(run).unwrap();
    fs::write(run.join("spec.toml"), spec).unwrap();
    let last = values.last().unwrap();
    let summary = format!(r#"{{"status": "completed", "last": {{"{column}": {last}}}}}"#);
    fs::write(run.join("summary.json"), summary).unwrap();
    let rows: String = values
        .iter()
        .enumerate()
        .map(|(e, v)| format!("{e}.0,{e},{v}\n"))
        .collect();
    fs::write(
        run.join("metrics.csv"),
        format!("epoch,iteration,{column}\n{rows}"),
    )
    .unwrap();
}

#[test]
fn table8_reports_the_lowest_test_perplexity_and_keeps_the_proxy_apart() {
    let dir = TempDir::new().unwrap();
    for (name, proxy, ppl) in [
        ("full", false, [300.0, 90.0, 95.0]),
        ("proxy", true, [400.0, 250.0, 240.0]),
    ] {
        let run = dir.path().join(name);
        let fraction = if proxy { "valid_fraction = 0.1\n" } else { "" };
        let spec = format!(
            "name = \"{name}\"\n\n[data]\nkind = \"ptb\"\n{fraction}\n[model]\nkind = \"awd_lstm\"\n\
             layers = 1\n\n[optimizer]\nname = \"sisa\"\n\n[plot]\ny = [\"val_ppl\"]\ntable = \"table8\"\n"
        );
        write_epoch_run(&run, &spec, "test_ppl", &ppl);
    }
    super::tables::write(&super::table8::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("table8.csv")).unwrap();
    assert_eq!(
        csv,
        "layers,data,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees\n\
         1-layer,ptb,sisa,1,90.0000,0.0000,84.27,,5.7300,true\n\
         1-layer,proxy,sisa,1,240.0000,0.0000,,,,\n"
    );
}

/// Writes a completed run of the Fed-LAMB study, `dir/<spec name>/<run id>`, with sweep
/// point `point` (JSON pairs besides the seed) and final test accuracy `accuracy`.
fn write_fedlamb_run(dir: &Path, optimizer: &str, point: &str, seed: i64, accuracy: f64) {
    let name = format!("fed-lamb-mnist-mlp-{optimizer}");
    let id = format!("{},seed={seed}", point.replace(['"', ' ', ':'], ""));
    let run = dir.join(&name).join(id);
    fs::create_dir_all(&run).unwrap();
    let spec = format!(
        "name = \"{name}\"\nseed = {seed}\n\n[data]\nkind = \"mnist\"\n\n[data.partition]\n\
         kind = \"label-skew\"\nlabels = 2\n\n[model]\nkind = \"mlp\"\n\n[optimizer]\n\
         name = \"{optimizer}\"\n\n[plot]\ny = [\"test_acc\"]\ntable = \"fedlamb\"\n"
    );
    fs::write(run.join("spec.toml"), spec).unwrap();
    let summary = format!(
        r#"{{"status": "completed", "point": {{{point}, "seed": {seed}}}, "last": {{"test_acc": {accuracy}}}}}"#
    );
    fs::write(run.join("summary.json"), summary).unwrap();
    let metrics = format!("iteration,floats_up,test_acc\n0,0,0.1\n2,100,{accuracy}\n");
    fs::write(run.join("metrics.csv"), metrics).unwrap();
}

#[test]
fn fedlamb_reports_the_sweep_point_with_the_best_mean_over_seeds() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (
        r#""optimizer.lr": 0.01, "optimizer.weight_decay": 0.1"#,
        r#""optimizer.lr": 0.1, "optimizer.weight_decay": 0"#,
    );
    // b has the best single seed (0.99) but a the best mean (0.95 against 0.90).
    for (point, seed, accuracy) in [(a, 1, 0.94), (a, 2, 0.96), (b, 1, 0.99), (b, 2, 0.81)] {
        write_fedlamb_run(dir.path(), "fedlamb", point, seed, accuracy);
    }
    let sgd = r#""optimizer.lr": 0.1"#;
    write_fedlamb_run(dir.path(), "fedsgd", sgd, 1, 0.5);
    write_fedlamb_run(dir.path(), "fedsgd", sgd, 2, 0.7);
    super::tables::write(&super::fedlamb::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("fedlamb.csv")).unwrap();
    assert_eq!(
        csv,
        "dataset,model,partition,algorithm,config,seeds,mean,std,paper_mean,paper_std,\
         difference,disagrees\n\
         mnist,mlp,2-Label,fedsgd,lr=0.1,2,60.0000,14.1421,,,,\n\
         mnist,mlp,2-Label,fedlamb,lr=0.01 weight_decay=0.1,2,95.0000,1.4142,,,,\n"
    );
    let md = fs::read_to_string(dir.path().join("fedlamb.md")).unwrap();
    assert!(
        md.contains(
            "| mnist | mlp | 2-Label | 60.00 ± 14.14 (n = 2) at lr=0.1 | – | 95.00 ± 1.41 \
             (n = 2) at lr=0.01, weight_decay=0.1 | – |"
        ),
        "{md}"
    );
    // no paper values, so no note on the difference from them
    assert!(
        !md.contains('Δ') && md.contains("prints no numbers"),
        "{md}"
    );
    let rows = super::by_optimizer::rows(&super::fedlamb::TABLE, dir.path()).unwrap();
    let run = |name: &str, id: &str| dir.path().join(name).join(id);
    let fedlamb = "fed-lamb-mnist-mlp-fedlamb";
    assert_eq!(
        rows[0].1[1],
        (
            "fedlamb".to_string(),
            vec![
                run(fedlamb, "optimizer.lr0.01,optimizer.weight_decay0.1,seed=1"),
                run(fedlamb, "optimizer.lr0.01,optimizer.weight_decay0.1,seed=2"),
            ]
        )
    );
    let written = super::fedlamb::CURVES.write(dir.path()).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "fedlamb-mnist-mlp-2-Label-test_acc.png",
            "fedlamb-mnist-mlp-2-Label-test_acc.svg",
            "fedlamb-mnist-mlp-2-Label-test_acc-by-floats_up.png",
            "fedlamb-mnist-mlp-2-Label-test_acc-by-floats_up.svg",
        ]
    );
    let svg = fs::read_to_string(&written[1]).unwrap();
    positions(
        &svg,
        &["fedsgd (mean of 2 seeds)", "fedlamb (mean of 2 seeds)"],
    );
}

#[test]
fn a_series_of_several_keys_labels_curves_by_all_their_values() {
    let dir = TempDir::new().unwrap();
    let tables = format!(
        "{}\n[sweep]\n\"optimizer.lr\" = [0.1, 0.01]\n\"optimizer.weight_decay\" = [0, 0.1]\n",
        PLOT.replace(
            "logy = true",
            "logy = true\nseries = \"optimizer.lr, optimizer.weight_decay\""
        )
    );
    for (id, lr, wd) in [("a", 0.1, 0.1), ("b", 0.1, 0.0), ("c", 0.01, 0.1)] {
        let point = format!(r#"{{"optimizer.lr": {lr}, "optimizer.weight_decay": {wd}}}"#);
        write_run(dir.path(), id, &tables, "completed", &point, METRICS);
    }
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-gap.svg")).unwrap();
    let at = positions(
        &svg,
        &[
            "lr = 0.01, weight_decay = 0.1",
            "lr = 0.1, weight_decay = 0",
            "lr = 0.1, weight_decay = 0.1",
        ],
    );
    assert!(at.windows(2).all(|w| w[0] < w[1]), "legend order {at:?}");
    write_run(
        dir.path(),
        "d",
        &tables,
        "completed",
        r#"{"optimizer.lr": 1}"#,
        METRICS,
    );
    let error = error_of(&dir);
    assert!(
        error.contains("d/summary.json") && error.contains("`optimizer.weight_decay`"),
        "{error}"
    );
}

#[test]
fn curves_past_the_palette_are_dashed() {
    let dir = TempDir::new().unwrap();
    let values: Vec<String> = (1..=11).map(|v| v.to_string()).collect();
    let tables = format!(
        "{PLOT}\n[sweep]\n\"optimizer.sigma0\" = [{}]\n",
        values.join(", ")
    );
    for v in &values {
        let point = format!(r#"{{"optimizer.sigma0": {v}}}"#);
        write_run(dir.path(), v, &tables, "completed", &point, METRICS);
    }
    plot_results(dir.path()).unwrap();
    let svg = fs::read_to_string(dir.path().join("fig-objective.svg")).unwrap();
    // sigma0 = 2 (the second colour, once): its line and legend entry
    assert_eq!(polylines_in(&svg, "#FF7F0E"), 2);
    // sigma0 = 1 solid and sigma0 = 11 in the same colour, dashed: many short pieces
    assert!(polylines_in(&svg, "#1F77B4") > 4, "{svg}");
}

#[test]
fn table4_reports_the_last_score_with_the_papers_fid_and_keeps_the_substitute_apart() {
    let dir = TempDir::new().unwrap();
    for (name, model, score, optimizer, values) in [
        ("fid", "wgan_gp", "fid", "adam", [300.0, 60.0, 75.0]),
        ("sub", "wgan", "fd_fmnist", "sisa", [360.0, 130.0, 160.0]),
    ] {
        let run = dir.path().join(name);
        let spec = format!(
            "name = \"{name}\"\n\n[data]\nkind = \"fashion_mnist\"\n\n[model]\nkind = \"{model}\"\n\n\
             [gan]\nscore = \"{score}\"\n\n[optimizer]\nname = \"{optimizer}\"\n\n[plot]\n\
             y = [\"{score}\"]\ntable = \"table4\"\n"
        );
        write_epoch_run(&run, &spec, score, &values);
    }
    super::tables::write(&super::table4::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("table4.csv")).unwrap();
    assert_eq!(
        csv,
        "model,score,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees\n\
         wgan_gp,fid,adam,1,75.0000,0.0000,71.38,5.04,3.6200,false\n\
         wgan,fd_fmnist,sisa,1,160.0000,0.0000,,,,\n"
    );
    let figures = super::table4::FIGURE3.write(dir.path()).unwrap();
    let names: Vec<String> = figures
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"figure3-wgan_gp-fid-fid.png".to_string())
            && names.contains(&"figure3-wgan-fd_fmnist-fd_fmnist.png".to_string())
            && names.len() == 4,
        "one figure per row, of the score that row has: {names:?}"
    );
}

#[test]
fn figure2_reports_the_last_validation_loss_and_draws_it_against_tokens_and_seconds() {
    let dir = TempDir::new().unwrap();
    for (name, optimizer, last) in [("a", "adamw", 4.5), ("b", "nsisa", 4.0)] {
        let run = dir.path().join(name);
        fs::create_dir_all(&run).unwrap();
        let spec = format!(
            "name = \"{name}\"\n\n[data]\nkind = \"tokens\"\npath = \"corpora/debian-text\"\n\n\
             [model]\nkind = \"gpt\"\npreset = \"gpt2_nano\"\nn_layer = 4\nn_embd = 128\n\
             block_size = 128\n\n[optimizer]\nname = \"{optimizer}\"\n\n[plot]\n\
             y = [\"val_loss\"]\ntable = \"figure2\"\n"
        );
        fs::write(run.join("spec.toml"), spec).unwrap();
        let summary = format!(r#"{{"status": "completed", "last": {{"val_loss": {last}}}}}"#);
        fs::write(run.join("summary.json"), summary).unwrap();
        let metrics = format!(
            "epoch,iteration,val_loss,tokens,wall_s\n0.0,0,10,0,0\n0.5,2,6,4096,3.5\n1.0,4,{last},8192,7\n"
        );
        fs::write(run.join("metrics.csv"), metrics).unwrap();
    }
    super::tables::write(&super::figure2::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("figure2.csv")).unwrap();
    assert_eq!(
        csv,
        "model,data,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees\n\
         gpt2_nano-4x128-T128,debian-text,nsisa,1,4.0000,0.0000,,,,\n\
         gpt2_nano-4x128-T128,debian-text,adamw,1,4.5000,0.0000,,,,\n"
    );
    let figures = super::figure2::FIGURE2.write(dir.path()).unwrap();
    let names: Vec<String> = figures
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "figure2-gpt2_nano-4x128-T128-debian-text-val_loss.png",
        "figure2-gpt2_nano-4x128-T128-debian-text-val_loss-by-wall_s.png",
    ] {
        assert!(names.contains(&want.to_string()), "{want} among {names:?}");
    }
}

#[test]
fn table6_reads_losses_and_similarity_at_epochs_2_5_15_with_the_papers_beside() {
    let dir = TempDir::new().unwrap();
    let runs = [
        ("s1", "sisa", 1, 3.0),
        ("s2", "sisa", 2, 3.2),
        ("a1", "adamw", 1, 4.0),
    ];
    for (name, optimizer, seed, loss2) in runs {
        let run = dir.path().join(name);
        fs::create_dir_all(&run).unwrap();
        let spec = format!(
            "name = \"table6-gpt2-124m-{optimizer}\"\nseed = {seed}\n\n[data]\nkind = \
             \"recipes\"\npath = \"recipes.csv\"\nloss_on_padding = true\n\n[model]\nkind = \
             \"gpt\"\nweights = \"gpt2\"\n\n[optimizer]\nname = \"{optimizer}\"\n\n[plot]\n\
             y = [\"test_loss\"]\nx = \"epoch\"\ntable = \"table6\"\n"
        );
        fs::write(run.join("spec.toml"), spec).unwrap();
        let model = r#"{"style": "classic", "n_layer": 12, "n_head": 12, "n_embd": 768,
            "block_size": 1024, "vocab_size": 50260, "dropout": 0.1}"#;
        fs::write(run.join("model.json"), model).unwrap();
        fs::write(
            run.join("summary.json"),
            r#"{"status": "completed", "last": {"test_loss": 2.0}}"#,
        )
        .unwrap();
        let mut metrics = String::from("epoch,iteration,train_loss,test_loss,similarity,wall_s\n");
        for epoch in 0..=15 {
            let loss = if epoch == 2 { loss2 } else { 2.0 };
            let similarity = match epoch {
                2 | 5 | 15 => format!("{}", 80 + epoch),
                _ => "NaN".into(),
            };
            metrics.push_str(&format!(
                "{epoch},{},{loss},{loss},{similarity},1\n",
                4 * epoch
            ));
        }
        fs::write(run.join("metrics.csv"), metrics).unwrap();
    }
    super::table6::write(dir.path()).unwrap();
    let md = fs::read_to_string(dir.path().join("table6.md")).unwrap();
    // the seeds' mean ± std, the paper's value in brackets; AdamW's row first
    assert!(
        md.contains(
            "| table6-gpt2-124m | gpt2-124M | pads-counted | adamw | 1 | 4.00 ± 0.00 [5.20] |"
        ),
        "{md}"
    );
    assert!(md.contains("| sisa | 2 | 3.10 ± 0.14 [3.69] |"), "{md}");
    assert!(
        md.contains("82.00 ± 0.00 [83.15] | 85.00 ± 0.00 [84.36] | 95.00 ± 0.00 [84.82] |"),
        "{md}"
    );
    let figures = super::table6::FIGURE6.write(dir.path()).unwrap();
    assert!(
        figures.iter().any(|f| f
            .to_string_lossy()
            .ends_with("figure6-table6-gpt2-124m-gpt2-124M-pads-counted-test_loss.png")),
        "{figures:?}"
    );
}

#[test]
fn figure7_reports_the_last_test_return_per_environment_and_run_length() {
    let dir = TempDir::new().unwrap();
    let runs = [
        ("s1", "sisa", "HalfCheetah-v4", "a2c", 3_000_000, 900.0),
        ("s2", "sisa", "HalfCheetah-v4", "a2c", 3_000_000, 1100.0),
        ("r1", "rmsprop", "HalfCheetah-v4", "a2c", 3_000_000, 700.0),
        ("a1", "adam", "Ant-v4", "ppo", 61_440, 50.0),
    ];
    for (name, optimizer, env, algorithm, steps, last) in runs {
        let run = dir.path().join(name);
        fs::create_dir_all(&run).unwrap();
        let spec = format!(
            "name = \"{name}\"\n\n[data]\nkind = \"environment\"\n\n[rl]\nenv = \"{env}\"\n\
             algorithm = \"{algorithm}\"\n\n[optimizer]\nname = \"{optimizer}\"\n\n[plot]\n\
             y = [\"test_return\"]\ntable = \"figure7\"\n"
        );
        fs::write(run.join("spec.toml"), spec).unwrap();
        let summary = format!(
            r#"{{"status": "completed", "last": {{"test_return": {last}, "env_steps": {steps}}}}}"#
        );
        fs::write(run.join("summary.json"), summary).unwrap();
        let metrics = format!(
            "epoch,iteration,env_steps,test_return,wall_s\n0.0,0,0,10,0\n1.0,4,{steps},{last},7\n"
        );
        fs::write(run.join("metrics.csv"), metrics).unwrap();
    }
    super::tables::write(&super::figure7::TABLE, dir.path()).unwrap();
    let csv = fs::read_to_string(dir.path().join("figure7.csv")).unwrap();
    assert_eq!(
        csv,
        "env,agent,steps,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees\n\
         Ant-v4,PPO,61440-steps,adam,1,50.0000,0.0000,,,,\n\
         HalfCheetah-v4,A2C,3000000-steps,sisa,2,1000.0000,141.4214,,,,\n\
         HalfCheetah-v4,A2C,3000000-steps,rmsprop,1,700.0000,0.0000,,,,\n"
    );
    let figures = super::figure7::FIGURE7.write(dir.path()).unwrap();
    let names: Vec<String> = figures
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"figure7-HalfCheetah-v4-A2C-3000000-steps-test_return.png".to_string()),
        "{names:?}"
    );
}
