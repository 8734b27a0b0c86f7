//! The fonts Bilan draws text with, carried in the binaries (DejaVu Sans,
//! Bitstream Vera licence, `shared/fonts/`): every French letter renders
//! whatever the machine or the phone has installed. The server's PDF
//! report and the app's photo annotations use the same files.

/// DejaVu Sans, regular.
pub const REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// DejaVu Sans, bold.
pub const BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
