//! Rendering a figure to PNG and SVG with plotters.

use crate::spec::Legend;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::curves::Curve;

/// Size of the figures in pixels.
const SIZE: (u32, u32) = (1024, 720);

/// Curve colours (the Tableau 10 palette), cycled when there are more curves (dashed the
/// second time round).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Everything drawn in one figure.
pub(super) struct Figure<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub logx: bool,
    pub logy: bool,
    pub legend: Legend,
    pub curves: Vec<Curve>,
}

/// Draws `figure` into the PNG file `path`, atomically.
pub(super) fn write_png(figure: &Figure, path: &Path) -> Result<()> {
    write_atomically(path, |tmp| {
        draw_figure(BitMapBackend::new(tmp, SIZE).into_drawing_area(), figure)
    })
}

/// Draws `figure` into the SVG file `path`, atomically.
pub(super) fn write_svg(figure: &Figure, path: &Path) -> Result<()> {
    write_atomically(path, |tmp| {
        draw_figure(SVGBackend::new(tmp, SIZE).into_drawing_area(), figure)
    })
}

/// Has `write` create a hidden temporary file next to `path`, then renames it
/// to `path`, so that `path` is never seen half written.
fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temporary_path(path);
    let written = write(&tmp)
        .with_context(|| format!("drawing {}", path.display()))
        .and_then(|()| {
            fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
        });
    if written.is_err() {
        // Best effort: the drawing error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A hidden name in the folder of `path`, keeping its extension, which tells
/// the bitmap backend which format to encode.
fn temporary_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let extension = path.extension().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{stem}.{}.tmp.{extension}", std::process::id()))
}

/// Makes the embedded DejaVu Sans the "sans-serif" font (the machine may have
/// no system fonts).
fn register_sans_serif() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    ensure!(
        registered,
        "the embedded DejaVu Sans font could not be loaded"
    );
    Ok(())
}

/// Draws `figure` on `root`, on linear or log axes as the figure asks.
fn draw_figure<DB>(root: DrawingArea<DB, Shift>, figure: &Figure) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    register_sans_serif()?;
    let all = || figure.curves.iter().flat_map(|c| c.points.iter());
    let logx = figure.logx && spans_a_decade(all().map(|&(x, _)| x));
    let logy = figure.logy && spans_a_decade(all().map(|&(_, y)| y));
    let segments: Vec<_> = figure
        .curves
        .iter()
        .map(|curve| segments(&curve.points, logx, logy))
        .collect();
    let bands: Vec<_> = figure
        .curves
        .iter()
        .map(|curve| band_polygons(&curve.band, logx, logy))
        .collect();
    let points = || segments.iter().chain(&bands).flatten().flatten();
    let x = axis_range(points().map(|&(x, _)| x), logx);
    let y = axis_range(points().map(|&(_, y)| y), logy);
    let lines = (&segments[..], &bands[..]);
    // plotters spreads at most this many labels over an axis; a log axis spends them on its
    // upper decades unless given more (1–9 × each power of ten)
    let labels = |log: bool| if log { 40 } else { 10 };
    let counts = (labels(logx), labels(logy));
    match (logx, logy) {
        (false, false) => draw_chart(&root, figure, lines, counts, x, y),
        (true, false) => draw_chart(&root, figure, lines, counts, x.log_scale(), y),
        (false, true) => draw_chart(&root, figure, lines, counts, x, y.log_scale()),
        (true, true) => draw_chart(&root, figure, lines, counts, x.log_scale(), y.log_scale()),
    }?;
    root.present()?;
    Ok(())
}

/// Lines (or polygons) of every curve, each made of pieces of plottable points.
type Pieces = [Vec<Vec<(f64, f64)>>];

/// Draws the axes, each curve's band (its polygons, shaded), one line per curve (made of its
/// segments) and the legend.
fn draw_chart<DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
    (segments, bands): (&Pieces, &Pieces),
    (x_labels, y_labels): (usize, usize),
    x: X,
    y: Y,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(figure.title, ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(figure.x_label)
        .y_desc(figure.y_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .x_labels(x_labels)
        .y_labels(y_labels)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;
    for (index, polygons) in bands.iter().enumerate() {
        let fill = PALETTE[index % PALETTE.len()].mix(0.18).filled();
        chart.draw_series(
            polygons
                .iter()
                .map(|polygon| Polygon::new(polygon.clone(), fill)),
        )?;
    }
    for (index, (curve, segments)) in figure.curves.iter().zip(segments).enumerate() {
        let style = PALETTE[index % PALETTE.len()].stroke_width(2);
        // the palette's second round of colours dashed, so no two curves look the same
        // up to twice its length
        if (index / PALETTE.len()) % 2 == 1 {
            let dashed = |points: Vec<(f64, f64)>| DashedPathElement::new(points, 8, 5, style);
            chart
                .draw_series(segments.iter().map(|segment| dashed(segment.clone())))?
                .label(&curve.label)
                .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 24, y)], 8, 5, style));
        } else {
            chart
                .draw_series(
                    segments
                        .iter()
                        .map(|segment| PathElement::new(segment.clone(), style)),
                )?
                .label(&curve.label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(match figure.legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            Legend::MiddleRight => SeriesLabelPosition::MiddleRight,
            Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
        })
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .draw()?;
    Ok(())
}

/// Splits `points` into runs of consecutive plottable points: finite, and
/// positive on a log axis. A curve is thus never drawn across a gap.
fn segments(points: &[(f64, f64)], logx: bool, logy: bool) -> Vec<Vec<(f64, f64)>> {
    pieces(points, |&(x, y)| plottable(x, logx) && plottable(y, logy))
}

/// The polygons of a band of `(x, low, high)` points: one per run of plottable points, along
/// the highs and back along the lows.
fn band_polygons(band: &[(f64, f64, f64)], logx: bool, logy: bool) -> Vec<Vec<(f64, f64)>> {
    let ok = |&(x, low, high): &(f64, f64, f64)| {
        plottable(x, logx) && plottable(low, logy) && plottable(high, logy)
    };
    pieces(band, ok)
        .into_iter()
        .map(|piece| {
            let highs = piece.iter().map(|&(x, _, high)| (x, high));
            highs
                .chain(piece.iter().rev().map(|&(x, low, _)| (x, low)))
                .collect()
        })
        .collect()
}

/// The maximal runs of consecutive items that are `ok`.
fn pieces<T: Copy>(items: &[T], ok: impl Fn(&T) -> bool) -> Vec<Vec<T>> {
    items
        .split(|item| !ok(item))
        .filter(|piece| !piece.is_empty())
        .map(<[_]>::to_vec)
        .collect()
}

/// Whether the positive finite `values` span a factor of 10 or more: a log axis over less
/// has no labelled tick (plotters labels powers of ten), so such an axis is drawn linear.
fn spans_a_decade(values: impl Iterator<Item = f64>) -> bool {
    let (low, high) = values
        .filter(|&v| plottable(v, true))
        .fold((f64::INFINITY, 0.0f64), |(low, high), v| {
            (low.min(v), high.max(v))
        });
    high >= 10.0 * low
}

/// Whether `value` can be placed on a (log) axis.
fn plottable(value: f64, log: bool) -> bool {
    value.is_finite() && (!log || value > 0.0)
}

/// The extent of `values` (all plottable) with a 5% margin on each side, measured in
/// decades on a log axis, whose low end is then lowered to a power of ten; a default extent
/// when there are none.
fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let to_axis = |value: f64| if log { value.log10() } else { value };
    let from_axis = |value: f64| if log { 10f64.powf(value) } else { value };
    let (low, high) = values
        .map(to_axis)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    if low > high {
        return if log { 1.0..10.0 } else { 0.0..1.0 };
    }
    let margin = if high > low {
        0.05 * (high - low)
    } else if log || low == 0.0 {
        0.5
    } else {
        0.1 * low.abs()
    };
    // plotters labels a log axis from its first power of ten on: start at one
    let start = if log {
        (low - margin).floor()
    } else {
        low - margin
    };
    from_axis(start)..from_axis(high + margin)
}

/// A tick label with at most 9 significant digits, in scientific notation
/// (`2.5e-7`) for the very small or large magnitudes log axes often reach.
fn tick_label(value: &f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        return "0".to_owned();
    }
    if (1e-3..1e6).contains(&magnitude) {
        let decimals = (8 - magnitude.log10().floor() as i32).max(0) as usize;
        return trim_zeros(&format!("{value:.decimals$}")).to_owned();
    }
    let scientific = format!("{value:.8e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    format!("{}e{exponent}", trim_zeros(mantissa))
}

/// `number` (written with a decimal point) without trailing zeros after it.
fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::{axis_range, spans_a_decade, tick_label};

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<_> = [
            0.0,
            50.0,
            0.09999999999998,
            0.25,
            -1.5e-3,
            1e-7,
            2.5e6,
            12345.0,
        ]
        .iter()
        .map(tick_label)
        .collect();
        assert_eq!(
            labels,
            ["0", "50", "0.1", "0.25", "-0.0015", "1e-7", "2.5e6", "12345"]
        );
    }

    #[test]
    fn a_log_axis_needs_a_decade() {
        assert!(spans_a_decade([0.5, 2.0, 6.0, -1.0].into_iter()));
        assert!(!spans_a_decade([1.5, 2.3, 0.0, f64::NAN].into_iter()));
        assert!(!spans_a_decade(std::iter::empty()));
    }

    #[test]
    fn axis_ranges_have_margins() {
        assert_eq!(axis_range([0.0, 100.0].into_iter(), false), -5.0..105.0);
        let log = axis_range([1e-2, 1e2].into_iter(), true);
        // the low end lowered from 10^-2.2 to the power of ten below, for plotters' labels
        assert!((log.start - 1e-3).abs() < 1e-15, "{log:?}");
        assert!((log.end - 10f64.powf(2.2)).abs() < 1e-9, "{log:?}");
        let ppl = axis_range([250.0, 7600.0].into_iter(), true);
        assert!((ppl.start - 100.0).abs() < 1e-9, "{ppl:?}");
        assert_eq!(axis_range(std::iter::empty(), true), 1.0..10.0);
        assert_eq!(axis_range([3.0].into_iter(), false), 2.7..3.3);
    }
}
