//! Teeth whitening on faces it was not tuned on. The fixtures are made here from the one
//! public-domain portrait we may transform (scikit-image's astronaut, see LICENSES.md): its
//! teeth painted from mildly to strongly yellow, the photo scaled so the face is 150 to
//! 1500 px wide, the skin recoloured darker and lighter, the mouth painted closed, the lips
//! painted with red lipstick, two faces in one photo, the face turned 20°. For each, the
//! teeth (known, because we painted them) must lose ≥ 40 % of their yellowness at the
//! default strength and not get darker, < 0.5 % of the photo may change outside the lips,
//! and the edit must fade out: no visible step where changed meets unchanged pixels.
//!
//! `cargo test -p darkroom-imaging --test teeth -- --nocapture` prints the table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::Limits;
use darkroom_imaging::retouch::whiten_teeth;
use darkroom_imaging::{decode, DecodeLimits, Photo};
use image::{imageops, DynamicImage, Rgb, RgbImage};

const DEFAULT_STRENGTH: f32 = 0.5;
/// The astronaut's face is about 140 px wide in the 512 px photo.
const FACE_WIDTH: f32 = 140.0;

fn astronaut() -> RgbImage {
    let bytes = darkroom_testkit::fixture("astronaut.jpg");
    decode(&bytes, DecodeLimits::from(Limits::default())).unwrap().image.to_rgb8()
}

fn redness([r, g, b]: [u8; 3]) -> f32 {
    let [r, g, b] = [r, g, b].map(f32::from);
    (r - g) / (r + g + b + 1.0) * 3.0
}

fn luma([r, g, b]: [u8; 3]) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// A photo and what is known about it, pixel by pixel.
#[derive(Clone)]
struct Fixture {
    name: String,
    image: RgbImage,
    teeth: Vec<bool>,
    /// Teeth and lips: where whitening may change pixels.
    mouth: Vec<bool>,
}

impl Fixture {
    fn base() -> Self {
        let image = astronaut();
        let (w, h) = image.dimensions();
        let mut teeth = vec![false; (w * h) as usize];
        for y in 143..=149 {
            for x in 205..243 {
                let p = image.get_pixel(x, y).0;
                teeth[(y * w + x) as usize] = redness(p) < 0.15 && luma(p) > 190.0;
            }
        }
        let mut mouth = vec![false; (w * h) as usize];
        for y in 133..161 {
            for x in 200..250 {
                mouth[(y * w + x) as usize] = true;
            }
        }
        Self { name: "astronaut".into(), image, teeth, mouth }
    }

    fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// Yellows the teeth: `amount` 0–1 of blue taken away (and a little green).
    fn yellowed(mut self, amount: f32) -> Self {
        let w = self.image.width();
        for y in 0..self.image.height() {
            for x in 0..w {
                if self.teeth[(y * w + x) as usize] {
                    let Rgb([r, g, b]) = *self.image.get_pixel(x, y);
                    let yellow = [
                        f32::from(r) * (1.0 - 0.02 * amount),
                        f32::from(g) * (1.0 - 0.05 * amount),
                        f32::from(b) * (1.0 - 0.22 * amount),
                    ];
                    self.image.put_pixel(x, y, Rgb(yellow.map(|c| c.round().clamp(0.0, 255.0) as u8)));
                }
            }
        }
        self
    }

    fn scaled(self, factor: f32) -> Self {
        let (w, h) = self.image.dimensions();
        let (nw, nh) = ((w as f32 * factor).round() as u32, (h as f32 * factor).round() as u32);
        let image = imageops::resize(&self.image, nw, nh, imageops::FilterType::Lanczos3);
        let remap = |mask: &[bool]| -> Vec<bool> {
            let mut out = vec![false; (nw * nh) as usize];
            for y in 0..nh {
                for x in 0..nw {
                    let (sx, sy) = (((x as f32 + 0.5) / factor) as u32, ((y as f32 + 0.5) / factor) as u32);
                    out[(y * nw + x) as usize] = mask[(sy.min(h - 1) * w + sx.min(w - 1)) as usize];
                }
            }
            out
        };
        // The painted teeth's edge pixels are blends after resampling: keep the core only.
        let teeth = erode(&remap(&self.teeth), nw, nh, (factor / 2.0) as u32);
        Self { name: self.name, image, teeth, mouth: remap(&self.mouth) }
    }

    /// Recolours everything but the teeth: a darker skin (`multiply`), or a lighter one
    /// (`gamma` below 1 lifts it, keeping its hue).
    fn skin(mut self, multiply: [f32; 3], gamma: f32) -> Self {
        let w = self.image.width();
        for y in 0..self.image.height() {
            for x in 0..w {
                if self.teeth[(y * w + x) as usize] {
                    continue;
                }
                let pixel = self.image.get_pixel(x, y).0;
                let out = [0, 1, 2].map(|c| {
                    let v = f32::from(pixel[c]) * multiply[c];
                    (255.0 * (v / 255.0).powf(gamma)).round().clamp(0.0, 255.0) as u8
                });
                self.image.put_pixel(x, y, Rgb(out));
            }
        }
        self
    }

    /// Paints the mouth shut: the opening filled with the lower lip's colour.
    fn closed(mut self) -> Self {
        let w = self.image.width();
        for x in 200..250 {
            let lip = *self.image.get_pixel(x, 153);
            for y in 141..152 {
                self.image.put_pixel(x, y, lip);
            }
        }
        self.teeth.iter_mut().for_each(|t| *t = false);
        let _ = w;
        self
    }

    /// Red lipstick on every lip pixel (redder than the skin around).
    fn lipstick(mut self) -> Self {
        let w = self.image.width();
        for y in 133..161 {
            for x in 200..250 {
                let p = self.image.get_pixel(x, y).0;
                if !self.teeth[(y * w + x) as usize] && redness(p) > 0.24 && (136..=157).contains(&y) {
                    let l = luma(p) / 255.0;
                    self.image.put_pixel(x, y, Rgb([(200.0 * l + 30.0) as u8, (40.0 * l) as u8, (60.0 * l) as u8]));
                }
            }
        }
        self
    }

    /// This photo and a smaller copy of it, side by side.
    fn with_second_face(self) -> Self {
        let small = self.clone().scaled(0.8);
        let (w, h) = self.image.dimensions();
        let (sw, sh) = small.image.dimensions();
        let mut image = RgbImage::from_pixel(w + sw, h, Rgb([200, 200, 205]));
        imageops::replace(&mut image, &self.image, 0, 0);
        imageops::replace(&mut image, &small.image, i64::from(w), i64::from(h - sh));
        let place = |big: &[bool], little: &[bool]| {
            let mut out = vec![false; ((w + sw) * h) as usize];
            for y in 0..h {
                for x in 0..w {
                    out[(y * (w + sw) + x) as usize] = big[(y * w + x) as usize];
                }
            }
            for y in 0..sh {
                for x in 0..sw {
                    out[((y + h - sh) * (w + sw) + x + w) as usize] = little[(y * sw + x) as usize];
                }
            }
            out
        };
        Self {
            name: self.name,
            teeth: place(&self.teeth, &small.teeth),
            mouth: place(&self.mouth, &small.mouth),
            image,
        }
    }

    /// Turned by `degrees` about the face's centre (bilinear; the masks follow, nearest).
    fn turned(self, degrees: f32) -> Self {
        let (w, h) = self.image.dimensions();
        let (cx, cy) = (226.0, 130.0);
        let (sin, cos) = degrees.to_radians().sin_cos();
        let mut image = RgbImage::from_pixel(w, h, Rgb([200, 200, 205]));
        let mut teeth = vec![false; (w * h) as usize];
        let mut mouth = vec![false; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let (sx, sy) = (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);
                if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
                    continue;
                }
                let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
                let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                let at = |x: u32, y: u32| self.image.get_pixel(x, y).0.map(f32::from);
                let (a, b, c, d) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
                let mixed = [0, 1, 2].map(|i| {
                    let top = a[i] * (1.0 - fx) + b[i] * fx;
                    let bottom = c[i] * (1.0 - fx) + d[i] * fx;
                    (top * (1.0 - fy) + bottom * fy).round() as u8
                });
                image.put_pixel(x, y, Rgb(mixed));
                let nearest = (sy.round() as u32 * w + sx.round() as u32) as usize;
                teeth[(y * w + x) as usize] = self.teeth[nearest];
                mouth[(y * w + x) as usize] = self.mouth[nearest];
            }
        }
        Self { name: self.name, image, teeth: erode(&teeth, w, h, 1), mouth }
    }
}

fn erode(mask: &[bool], w: u32, h: u32, radius: u32) -> Vec<bool> {
    if radius == 0 {
        return mask.to_vec();
    }
    let r = radius as i64;
    (0..h as i64)
        .flat_map(|y| (0..w as i64).map(move |x| (x, y)))
        .map(|(x, y)| {
            (-r..=r).all(|dy| {
                (-r..=r).all(|dx| {
                    let (nx, ny) = (x + dx, y + dy);
                    nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64 && mask[(ny * w as i64 + nx) as usize]
                })
            })
        })
        .collect()
}

fn yellowness(image: &RgbImage, mask: &[bool]) -> f32 {
    let (mut sum, mut n) = (0.0, 0.0);
    for (x, y, p) in image.enumerate_pixels() {
        if mask[(y * image.width() + x) as usize] {
            let [r, g, b] = p.0.map(f32::from);
            sum += (r + g) / 2.0 - b;
            n += 1.0;
        }
    }
    sum / n
}

fn mean_luma(image: &RgbImage, mask: &[bool]) -> f32 {
    let (mut sum, mut n) = (0.0, 0.0);
    for (x, y, p) in image.enumerate_pixels() {
        if mask[(y * image.width() + x) as usize] {
            sum += luma(p.0);
            n += 1.0;
        }
    }
    sum / n
}

struct Measured {
    yellow_before: f32,
    yellow_after: f32,
    luma_before: f32,
    luma_after: f32,
    changed_outside: f64,
    max_edge_step: u8,
}

fn whiten(fixture: &Fixture) -> (RgbImage, usize) {
    let mut photo = Photo::new(DynamicImage::ImageRgb8(fixture.image.clone()), None);
    let mouths = whiten_teeth(&mut photo, &None, DEFAULT_STRENGTH);
    (photo.image.to_rgb8(), mouths)
}

fn measure(fixture: &Fixture, after: &RgbImage) -> Measured {
    let before = &fixture.image;
    let w = before.width();
    let diff = |x: u32, y: u32| {
        let (a, b) = (before.get_pixel(x, y).0, after.get_pixel(x, y).0);
        (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap_or(0)
    };
    let change = |x: u32, y: u32| {
        let (a, b) = (before.get_pixel(x, y).0, after.get_pixel(x, y).0);
        [0, 1, 2].map(|c| i16::from(b[c]) - i16::from(a[c]))
    };
    // A visible edge is where the edit stops in a smooth part of the photo.
    let similar = |(x, y): (u32, u32), (nx, ny): (u32, u32)| {
        let (a, b) = (before.get_pixel(x, y).0, before.get_pixel(nx, ny).0);
        (0..3).all(|c| a[c].abs_diff(b[c]) <= 8)
    };
    let (mut outside, mut max_step) = (0usize, 0u8);
    for y in 0..before.height() {
        for x in 0..w {
            if diff(x, y) == 0 {
                continue;
            }
            if !fixture.mouth[(y * w + x) as usize] {
                outside += 1;
            }
            for (nx, ny) in [(x.wrapping_sub(1), y), (x + 1, y), (x, y.wrapping_sub(1)), (x, y + 1)] {
                // Where the edit ends: a changed pixel beside an unchanged one of about the
                // same colour (a box edge in smooth skin would show as a large step here).
                if nx < w && ny < before.height() && diff(nx, ny) == 0 && similar((x, y), (nx, ny)) {
                    let p = change(x, y);
                    let step = (0..3).map(|c| p[c].unsigned_abs()).max().unwrap_or(0);
                    max_step = max_step.max(step.min(255) as u8);
                }
            }
        }
    }
    Measured {
        yellow_before: yellowness(before, &fixture.teeth),
        yellow_after: yellowness(after, &fixture.teeth),
        luma_before: mean_luma(before, &fixture.teeth),
        luma_after: mean_luma(after, &fixture.teeth),
        changed_outside: outside as f64 / (w * before.height()) as f64,
        max_edge_step: max_step,
    }
}

/// Largest change allowed where an edited pixel meets an untouched one.
const MAX_EDGE_STEP: u8 = 12;

fn check_whitened(fixture: &Fixture, expected_mouths: usize) -> Measured {
    let (after, mouths) = whiten(fixture);
    let m = measure(fixture, &after);
    let drop = 1.0 - m.yellow_after / m.yellow_before;
    eprintln!(
        "| {} | {}×{} | {:.0} → {:.0} ({:.0} %) | {:.0} → {:.0} | {:.3} % | {} |",
        fixture.name,
        fixture.image.width(),
        fixture.image.height(),
        m.yellow_before,
        m.yellow_after,
        -100.0 * drop,
        m.luma_before,
        m.luma_after,
        100.0 * m.changed_outside,
        m.max_edge_step
    );
    assert_eq!(mouths, expected_mouths, "{}: mouths whitened", fixture.name);
    assert!(
        drop >= 0.40,
        "{}: yellowness {:.1} -> {:.1}, only {:.0} % less",
        fixture.name,
        m.yellow_before,
        m.yellow_after,
        drop * 100.0
    );
    assert!(
        m.luma_after >= m.luma_before - 0.5,
        "{}: teeth darker ({:.1} -> {:.1})",
        fixture.name,
        m.luma_before,
        m.luma_after
    );
    assert!(m.changed_outside < 0.005, "{}: {:.3} % changed outside the lips", fixture.name, 100.0 * m.changed_outside);
    assert!(m.max_edge_step <= MAX_EDGE_STEP, "{}: a step of {} where the edit ends", fixture.name, m.max_edge_step);
    m
}

fn strong() -> Fixture {
    Fixture::base().yellowed(1.0)
}

#[test]
fn yellow_teeth_of_every_degree_are_whitened() {
    check_whitened(&Fixture::base().yellowed(0.3).named("mildly yellow"), 1);
    check_whitened(&Fixture::base().yellowed(0.65).named("yellow"), 1);
    let m = check_whitened(&strong().named("strongly yellow"), 1);
    assert!(m.yellow_before > 60.0, "the strong fixture is as yellow as the held-out portrait: {}", m.yellow_before);
}

#[test]
fn teeth_of_faces_150_to_1500_px_wide_are_whitened() {
    for face_width in [150.0, 500.0, 1500.0] {
        let factor = face_width / FACE_WIDTH;
        check_whitened(&strong().scaled(factor).named(&format!("face {face_width:.0} px")), 1);
    }
}

#[test]
fn darker_and_lighter_skin_tones() {
    check_whitened(&strong().skin([0.42, 0.32, 0.26], 1.0).named("dark skin"), 1);
    check_whitened(&strong().skin([0.7, 0.58, 0.48], 1.0).named("medium-dark skin"), 1);
    check_whitened(&strong().skin([1.0, 1.0, 1.0], 0.8).named("light skin"), 1);
}

#[test]
fn a_closed_mouth_is_left_exactly_as_it_was() {
    let fixture = strong().closed().named("closed mouth");
    let (after, mouths) = whiten(&fixture);
    assert_eq!(mouths, 0);
    assert_eq!(after.as_raw(), fixture.image.as_raw(), "a closed mouth was changed");
}

#[test]
fn red_lipstick_stays_red_while_the_teeth_are_whitened() {
    let fixture = strong().lipstick().named("red lipstick");
    let (after, _) = whiten(&fixture);
    let w = fixture.image.width();
    let mut lip_pixels = 0;
    for y in 136..=157 {
        for x in 200..250 {
            let p = fixture.image.get_pixel(x, y).0;
            if p[0] > 100 && p[1] < 60 && !fixture.teeth[(y * w + x) as usize] {
                lip_pixels += 1;
                let q = after.get_pixel(x, y).0;
                let change = (0..3).map(|c| p[c].abs_diff(q[c])).max().unwrap_or(0);
                assert!(change <= 12, "lipstick at ({x},{y}) changed by {change}: {p:?} -> {q:?}");
            }
        }
    }
    assert!(lip_pixels > 50, "the fixture has lipstick ({lip_pixels} px)");
    check_whitened(&fixture, 1);
}

#[test]
fn two_faces_in_one_photo_both_get_white_teeth() {
    check_whitened(&strong().with_second_face().named("two faces"), 2);
}

#[test]
fn a_face_turned_20_degrees() {
    check_whitened(&strong().turned(20.0).named("turned 20°"), 1);
}

#[test]
fn photos_without_faces_or_teeth_are_untouched() {
    for name in ["chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
        let bytes = darkroom_testkit::fixture(name);
        let before = decode(&bytes, DecodeLimits::from(Limits::default())).unwrap();
        let mut after = before.clone();
        whiten_teeth(&mut after, &None, 1.0);
        assert_eq!(before.image.as_bytes(), after.image.as_bytes(), "{name} was changed");
    }
}
