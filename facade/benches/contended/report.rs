//! The markdown tables on stdout and the SVG plot.

use crate::methods::Role;
use crate::sweep::Settings;
use crate::BackendResult;

pub fn print_sweep(result: &BackendResult, settings: &Settings) {
    let find = |role| result.methods.iter().position(|(_, r)| *r == role);
    let (table, native, for_update) = (
        find(Role::Table).expect("ctx.lock is always swept"),
        find(Role::Native),
        find(Role::ForUpdate).expect("FOR UPDATE is always swept"),
    );
    println!();
    println!(
        "### {}: increments/s ({} rounds of {} ms per point, medians)",
        result.label,
        settings.rounds,
        settings.point.as_millis()
    );
    let statements: Vec<String> = result
        .methods
        .iter()
        .zip(&result.statements)
        .map(|((name, _), s)| format!("{name} {s:.0}"))
        .collect();
    println!("statements per increment: {}", statements.join(", "));
    let native_name = native.map_or("native", |n| result.methods[n].0);
    // The facade's methods: ctx.lock, and on PostgreSQL also without the
    // stamp, each with its ratios to the native lock and to FOR UPDATE.
    let facades: Vec<usize> = std::iter::once(table)
        .chain(find(Role::TableUnstamped))
        .collect();
    let mut header = vec!["threads".to_owned()];
    header.extend(facades.iter().map(|&f| result.methods[f].0.to_owned()));
    header.extend([native_name.to_owned(), "FOR UPDATE".to_owned()]);
    for &f in &facades {
        let name = result.methods[f].0;
        header.push(format!("{name} / {native_name}"));
        header.push(format!("{name} / FOR UPDATE"));
    }
    println!();
    println!("| {} |", header.join(" | "));
    println!("|{}", "---:|".repeat(header.len()));
    for point in &result.points {
        let mut row = vec![point.threads.to_string()];
        row.extend(facades.iter().map(|&f| format!("{:.0}", point.rate(f))));
        row.push(native.map_or("–".to_owned(), |n| format!("{:.0}", point.rate(n))));
        row.push(format!("{:.0}", point.rate(for_update)));
        for &f in &facades {
            row.push(native.map_or("–".to_owned(), |n| format!("{:.2}", point.ratio(f, n))));
            row.push(format!("{:.2}", point.ratio(f, for_update)));
        }
        println!("| {} |", row.join(" | "));
    }
    for point in &result.points {
        for (m, failed) in point.failed.iter().enumerate() {
            if *failed > 0 {
                println!(
                    "  {} threads, {}: {failed} failed transactions (first: {})",
                    point.threads,
                    result.methods[m].0,
                    point.first_error[m].as_deref().unwrap_or("?")
                );
            }
        }
    }
    println!();
    println!("per-round increments/s:");
    for point in &result.points {
        for (m, (name, _)) in result.methods.iter().enumerate() {
            let rates: Vec<String> = point.rates[m].iter().map(|r| format!("{r:.0}")).collect();
            println!(
                "  {:>2} threads {name:<22} {}",
                point.threads,
                rates.join(" ")
            );
        }
    }
}

pub fn print_log_bytes(result: &BackendResult, settings: &Settings) {
    let log = &result.log;
    println!();
    println!(
        "### {}: log bytes per increment ({} reps of {} takes, single thread; min (median))",
        result.label, settings.wal_reps, settings.wal_takes
    );
    if let Some(note) = result.log_note {
        println!("note: {note}");
    }
    println!(
        "\"lock's own\" = the method's minimum minus its unlocked twin's: ctx.lock minus \
         the #[writer] without a lock, the hand-written locks minus the hand-written \
         transaction without one"
    );
    let header: Vec<String> = log
        .meters
        .iter()
        .flat_map(|m| [m.to_string(), format!("{m}, lock's own")])
        .collect();
    println!();
    println!("| method | µs/take | {} |", header.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(header.len()));
    for row in &log.rows {
        let base = log.rows.iter().find(|b| b.role == row.role.baseline());
        let cols: Vec<String> = row
            .cells
            .iter()
            .enumerate()
            .flat_map(|(k, (min, med))| {
                let own = base.map_or(f64::NAN, |base| (min - base.cells[k].0).round());
                // No "-0" for a difference that rounds away.
                let own = if own == 0.0 { 0.0 } else { own };
                [format!("{min:.0} ({med:.0})"), format!("{own:+.0}")]
            })
            .collect();
        println!(
            "| {} | {:.0} | {} |",
            row.method,
            row.micros,
            cols.join(" | ")
        );
    }
}

pub fn colour(role: Role) -> plotters::style::RGBColor {
    use plotters::style::RGBColor;
    match role {
        Role::Table => RGBColor(214, 39, 40),
        Role::TableUnstamped => RGBColor(255, 127, 14),
        Role::Native => RGBColor(31, 119, 180),
        Role::ForUpdate => RGBColor(44, 160, 44),
        Role::Unlocked | Role::UnlockedWriter => RGBColor(127, 127, 127),
    }
}

/// One panel per backend: threads (log 2) on x, increments/s on y, one
/// line per method.
pub fn plot(
    path: &std::path::Path,
    results: &[BackendResult],
    subtitle: &str,
) -> Result<(), String> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let width = 420 * results.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (title, body) = root.split_vertically(78);
    title
        .draw(&Text::new(
            "Contended counter increment: increments/s by threads",
            (10, 8),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(|e| e.to_string())?;
    title
        .draw(&Text::new(
            subtitle.to_owned(),
            (10, 32),
            ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(|e| e.to_string())?;
    // One legend for every panel: the colours mean the same everywhere.
    let mut x = 10;
    for (role, name) in [
        (
            Role::Table,
            "ctx.lock (a row of the locks table, through #[writer])",
        ),
        (Role::TableUnstamped, "ctx.lock, pg_lock_stamp(false)"),
        (
            Role::Native,
            "native lock by hand (pg_advisory_xact_lock / GET_LOCK)",
        ),
        (Role::ForUpdate, "SELECT … FOR UPDATE by hand"),
    ] {
        let style = colour(role);
        title
            .draw(&PathElement::new(
                vec![(x, 62), (x + 22, 62)],
                style.stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;
        title
            .draw(&Text::new(
                name,
                (x + 28, 55),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(|e| e.to_string())?;
        x += 50 + 6 * name.chars().count() as i32;
    }
    let panels = body.split_evenly((1, results.len().max(1)));
    for (panel, result) in panels.iter().zip(results) {
        let top = result
            .points
            .iter()
            .flat_map(|p| (0..result.methods.len()).map(|m| p.rate(m)))
            .fold(0.0, f64::max);
        let max_threads = result.points.iter().map(|p| p.threads).max().unwrap_or(1);
        let x_max = (max_threads as f64).log2().max(1.0);
        let mut chart = ChartBuilder::on(panel)
            .caption(result.label, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.25f64..x_max + 0.25, 0f64..top * 1.15)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-9 && *x >= 0.0 {
                    format!("{}", 1u64 << x.round() as u32)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc("threads")
            .y_desc("increments/s")
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        for (m, (_, role)) in result.methods.iter().enumerate() {
            let line: Vec<(f64, f64)> = result
                .points
                .iter()
                .map(|p| ((p.threads as f64).log2(), p.rate(m)))
                .collect();
            let style = colour(*role);
            chart
                .draw_series(LineSeries::new(line.clone(), style.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(line.iter().map(|&xy| Circle::new(xy, 3, style.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}
