//! Text on the crate's PNG figures: titles, axis labels, legends and row/column labels drawn
//! with the 8×8 bitmap glyphs of the `font8x8` crate (ASCII, Latin-1, Greek), so the figures need
//! no font files. A character with no glyph is drawn as `?`.

use font8x8::{UnicodeFonts, BASIC_FONTS, GREEK_FONTS, LATIN_FONTS, MISC_FONTS};
use image::{Rgb, RgbImage};

/// The side of a glyph cell at scale 1, in pixels.
pub const GLYPH: u32 = 8;

/// Text colour of labels: near black.
pub const INK: [u8; 3] = [30, 30, 30];

/// The 8 rows of a character's glyph (bit `i` of a row is column `i`, left to right).
fn glyph(c: char) -> [u8; 8] {
    BASIC_FONTS
        .get(c)
        .or_else(|| GREEK_FONTS.get(c))
        .or_else(|| LATIN_FONTS.get(c))
        .or_else(|| MISC_FONTS.get(c))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Width in pixels of `text` at `scale`: `8·scale` per character.
pub fn width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * GLYPH * scale
}

/// Draws `text` with its top-left corner at (x, y), each glyph pixel a `scale × scale` block;
/// pixels outside the image are skipped.
pub fn draw(img: &mut RgbImage, x: i64, y: i64, text: &str, colour: [u8; 3], scale: u32) {
    let step = i64::from(GLYPH * scale);
    for (k, c) in text.chars().enumerate() {
        let left = x + k as i64 * step;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    let (px, py) = (
                        left + col * i64::from(scale),
                        y + row as i64 * i64::from(scale),
                    );
                    fill(img, px, py, scale, colour);
                }
            }
        }
    }
}

/// Draws `text` centred horizontally on `centre_x`, top at `y`.
pub fn draw_centred(
    img: &mut RgbImage,
    centre_x: i64,
    y: i64,
    text: &str,
    colour: [u8; 3],
    scale: u32,
) {
    draw(
        img,
        centre_x - i64::from(width(text, scale)) / 2,
        y,
        text,
        colour,
        scale,
    );
}

/// Draws `text` turned a quarter turn anticlockwise (reading bottom to top, as a y-axis label),
/// centred vertically on `centre_y`, its glyphs' tops at column `x`.
pub fn draw_vertical(
    img: &mut RgbImage,
    x: i64,
    centre_y: i64,
    text: &str,
    colour: [u8; 3],
    scale: u32,
) {
    let s = i64::from(scale);
    let bottom = centre_y + i64::from(width(text, scale)) / 2;
    for (k, c) in text.chars().enumerate() {
        let base = bottom - k as i64 * i64::from(GLYPH) * s;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    // glyph pixel (col, row) → image (x + row, base − col)
                    fill(img, x + row as i64 * s, base - (col + 1) * s, scale, colour);
                }
            }
        }
    }
}

/// A `scale × scale` block at (x, y), clipped to the image.
fn fill(img: &mut RgbImage, x: i64, y: i64, scale: u32, colour: [u8; 3]) {
    for dy in 0..i64::from(scale) {
        for dx in 0..i64::from(scale) {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && px < i64::from(img.width()) && py < i64::from(img.height()) {
                img.put_pixel(px as u32, py as u32, Rgb(colour));
            }
        }
    }
}

/// A short tick label: 3 significant digits, `−` written as `-`.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (1e-2..1e4).contains(&v.abs()) {
        let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text lands where it is drawn and nowhere else: "A" at (2, 3) inks pixels inside its
    /// 8×8 cell only; scale 2 doubles the cell; the vertical form is the same glyph turned.
    #[test]
    fn text_inks_its_cell_only() {
        let mut img = RgbImage::from_pixel(40, 40, Rgb([255, 255, 255]));
        draw(&mut img, 2, 3, "A", INK, 1);
        let inked: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == INK)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!inked.is_empty());
        assert!(inked
            .iter()
            .all(|&(x, y)| (2..10).contains(&x) && (3..11).contains(&y)));
        let mut big = RgbImage::from_pixel(40, 40, Rgb([255, 255, 255]));
        draw(&mut big, 0, 0, "A", INK, 2);
        let count = |im: &RgbImage| im.pixels().filter(|p| p.0 == INK).count();
        assert_eq!(count(&big), 4 * inked.len());
        let mut turned = RgbImage::from_pixel(40, 40, Rgb([255, 255, 255]));
        draw_vertical(&mut turned, 5, 20, "A", INK, 1);
        assert_eq!(count(&turned), inked.len());
        assert_eq!(width("σ²", 2), 32);
        assert_ne!(glyph('σ'), glyph('?'));
    }

    /// Tick labels keep three significant digits.
    #[test]
    fn numbers_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-1.0), "-1.00");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.5), "0.500");
        assert_eq!(number(2.5e-5), "2.5e-5");
    }
}
