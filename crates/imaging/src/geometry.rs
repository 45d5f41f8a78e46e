//! Where the original photo's pixels are now. Recipe coordinates (crop boxes, red-eye and
//! teeth regions) are pixels of the auto-oriented original, "before any operation"; a
//! `Frame` tracks the affine map from those coordinates to the current image through
//! every resize, crop, rotation, flip and border, so a region named by the user lands on
//! the same pixels whatever operations come before it.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// x' = m[0]·x + m[1]·y + m[2];  y' = m[3]·x + m[4]·y + m[5]
    m: [f64; 6],
    pub original_width: u32,
    pub original_height: u32,
}

impl From<darkroom_core::CarriedFrame> for Frame {
    fn from(carried: darkroom_core::CarriedFrame) -> Self {
        Self { m: carried.matrix, original_width: carried.original_width, original_height: carried.original_height }
    }
}

impl From<Frame> for darkroom_core::CarriedFrame {
    fn from(frame: Frame) -> Self {
        Self { matrix: frame.m, original_width: frame.original_width, original_height: frame.original_height }
    }
}

impl Frame {
    pub fn identity(width: u32, height: u32) -> Self {
        Self { m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], original_width: width, original_height: height }
    }

    /// Applies `next` (an affine map of current coordinates) after this frame.
    fn then(self, next: [f64; 6]) -> Self {
        let [a, b, c, d, e, f] = self.m;
        let [p, q, r, s, t, u] = next;
        Self {
            m: [p * a + q * d, p * b + q * e, p * c + q * f + r, s * a + t * d, s * b + t * e, s * c + t * f + u],
            ..self
        }
    }

    /// This frame, for an image that is itself a reduced copy of a `width`×`height` original
    /// (a browser's preview copy): coordinates of that original land in the image.
    pub fn of_copy_of(self, width: u32, height: u32) -> Self {
        let sx = f64::from(self.original_width) / f64::from(width.max(1));
        let sy = f64::from(self.original_height) / f64::from(height.max(1));
        Self::identity(width, height).scaled(sx, sy).then(self.m)
    }

    /// How many pixels of the current image one pixel of the original becomes, along each
    /// axis on average (the square root of the map's area factor): 0.5 after halving.
    pub fn linear_scale(&self) -> f64 {
        (self.m[0] * self.m[4] - self.m[1] * self.m[3]).abs().sqrt()
    }

    pub fn scaled(self, sx: f64, sy: f64) -> Self {
        self.then([sx, 0.0, 0.0, 0.0, sy, 0.0])
    }

    pub fn translated(self, dx: f64, dy: f64) -> Self {
        self.then([1.0, 0.0, dx, 0.0, 1.0, dy])
    }

    /// Clockwise rotation of an image that is `width`×`height` before rotating.
    pub fn rotated_clockwise(self, degrees: u16, width: u32, height: u32) -> Self {
        let (w, h) = (f64::from(width), f64::from(height));
        match degrees {
            90 => self.then([0.0, -1.0, h, 1.0, 0.0, 0.0]),
            180 => self.then([-1.0, 0.0, w, 0.0, -1.0, h]),
            270 => self.then([0.0, 1.0, 0.0, -1.0, 0.0, w]),
            _ => self,
        }
    }

    /// A `width`×`height` image turned `radians` clockwise about its centre, of which the
    /// centred `kept_width`×`kept_height` rectangle is kept (`straighten`).
    pub fn turned_about_centre(self, radians: f64, width: u32, height: u32, kept_width: u32, kept_height: u32) -> Self {
        let (sin, cos) = (radians.sin(), radians.cos());
        let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
        let (ox, oy) = (f64::from(kept_width) / 2.0, f64::from(kept_height) / 2.0);
        self.then([cos, -sin, ox - cos * cx + sin * cy, sin, cos, oy - sin * cx - cos * cy])
    }

    pub fn flipped_horizontally(self, width: u32) -> Self {
        self.then([-1.0, 0.0, f64::from(width), 0.0, 1.0, 0.0])
    }

    pub fn flipped_vertically(self, height: u32) -> Self {
        self.then([1.0, 0.0, 0.0, 0.0, -1.0, f64::from(height)])
    }

    pub fn map_point(&self, x: f64, y: f64) -> (f64, f64) {
        let [a, b, c, d, e, f] = self.m;
        (a * x + b * y + c, d * x + e * y + f)
    }

    /// The rectangle of the current `width`×`height` image covering the original region,
    /// clipped to the image; `None` if nothing of it is left (cropped away).
    pub fn map_region(&self, x: u32, y: u32, w: u32, h: u32, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        // In f64: `x + w` must never wrap, whatever a recipe names.
        let (x, y, right, bottom) =
            (f64::from(x), f64::from(y), f64::from(x) + f64::from(w), f64::from(y) + f64::from(h));
        let corners = [(x, y), (right, y), (x, bottom), (right, bottom)].map(|(px, py)| self.map_point(px, py));
        let min_x = corners.iter().map(|c| c.0).fold(f64::INFINITY, f64::min).floor().max(0.0);
        let min_y = corners.iter().map(|c| c.1).fold(f64::INFINITY, f64::min).floor().max(0.0);
        let max_x = corners.iter().map(|c| c.0).fold(f64::NEG_INFINITY, f64::max).ceil().min(f64::from(width));
        let max_y = corners.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max).ceil().min(f64::from(height));
        (max_x > min_x && max_y > min_y).then_some((
            min_x as u32,
            min_y as u32,
            (max_x - min_x) as u32,
            (max_y - min_y) as u32,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_follows_resize_and_crop() {
        // 1000×800 original, halved, then the left 100 px cropped away.
        let frame = Frame::identity(1000, 800).scaled(0.5, 0.5).translated(-100.0, 0.0);
        assert_eq!(frame.map_region(400, 200, 100, 100, 400, 400), Some((100, 100, 50, 50)));
        assert_eq!(frame.map_region(0, 0, 100, 100, 400, 400), None);
    }

    #[test]
    fn regions_far_outside_the_image_never_wrap_around() {
        let frame = Frame::identity(100, 80);
        assert_eq!(frame.map_region(u32::MAX - 5, 10, 100, 10, 100, 80), None);
        assert_eq!(frame.map_region(90, 70, u32::MAX, u32::MAX, 100, 80), Some((90, 70, 10, 10)));
    }

    #[test]
    fn a_turn_about_the_centre_keeps_the_centre_and_turns_clockwise() {
        let frame = Frame::identity(200, 100).turned_about_centre(90f64.to_radians(), 200, 100, 50, 50);
        let (x, y) = frame.map_point(100.0, 50.0);
        assert!((x - 25.0).abs() < 1e-9 && (y - 25.0).abs() < 1e-9, "({x}, {y})");
        // A point right of the centre goes below it: clockwise, as the pixels turn.
        let (x, y) = frame.map_point(110.0, 50.0);
        assert!((x - 25.0).abs() < 1e-9 && (y - 35.0).abs() < 1e-9, "({x}, {y})");
    }

    #[test]
    fn rotations_and_flips_compose() {
        let (w, h) = (40, 20);
        let frame = Frame::identity(w, h).rotated_clockwise(90, w, h);
        // The original top-left pixel ends up at the top-right of the 20×40 result.
        assert_eq!(frame.map_region(0, 0, 1, 1, h, w), Some((19, 0, 1, 1)));
        let back = frame.rotated_clockwise(270, h, w);
        assert_eq!(back.map_region(3, 4, 5, 6, w, h), Some((3, 4, 5, 6)));
        let flipped = Frame::identity(w, h).flipped_horizontally(w).flipped_vertically(h);
        assert_eq!(flipped.map_region(0, 0, 2, 2, w, h), Some((38, 18, 2, 2)));
    }
}
