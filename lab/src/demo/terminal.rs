//! The live view's terminal: keys without Enter, an alternate screen, and
//! everything restored when the guard drops (also on an error or panic).
//! Plain termios and ANSI sequences: the view needs no more than that.

use std::io::{IsTerminal as _, Read as _, Write as _};

/// Whether the demo can draw a live view and read keys.
pub fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

pub(super) struct Terminal {
    saved: libc::termios,
}

impl Terminal {
    /// Switches stdin to non-canonical, no-echo, non-blocking reads. Ctrl-C
    /// still raises SIGINT (ISIG stays on), which the caller handles.
    pub(super) fn enter() -> std::io::Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is a terminal (`interactive`), the pointer is valid.
        if unsafe { libc::tcgetattr(0, &raw mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 0;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: as above.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw const raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Alternate screen, cursor hidden.
        print!("\x1b[?1049h\x1b[?25l");
        let _ = std::io::stdout().flush();
        Ok(Self { saved })
    }

    /// The keys pressed since the last call.
    #[expect(
        clippy::unused_self,
        reason = "only meaningful while the guard holds the terminal"
    )]
    pub(super) fn keys(&self) -> Vec<char> {
        let mut buf = [0u8; 64];
        match std::io::stdin().read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).chars().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Redraws the whole screen with `lines`.
    #[expect(
        clippy::unused_self,
        reason = "only meaningful while the guard holds the terminal"
    )]
    pub(super) fn draw(&self, lines: &[String]) {
        let mut out = String::from("\x1b[H");
        for line in lines {
            out.push_str(line);
            out.push_str("\x1b[K\r\n");
        }
        out.push_str("\x1b[J");
        print!("{out}");
        let _ = std::io::stdout().flush();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
        // SAFETY: restores the settings read in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw const self.saved) };
    }
}
