//! `lbd top`: a live view of a running daemon (services and real servers
//! with health, weight, connections and rates; VRRP instances), redrawn
//! every interval from `lbd status`'s report and at once on a key or a
//! resize. Rates are the daemon's (see `daemon::rates`), so `top` and
//! `status --rate` agree.
//!
//! - [`model`]: the state and what keys do to it;
//! - [`draw`]: the layout, with ratatui.

pub mod draw;
pub mod model;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};

use crate::daemon::{
    control,
    protocol::{Request, Response},
};
use model::{Key, TopState};

/// Asks the daemon for a report; the state keeps the last good one.
fn refresh(state: &mut TopState, socket: &Path) {
    match control::request(socket, &Request::Status) {
        Ok(Response::Status(report)) => {
            state.report = Some(*report);
            state.error = None;
        }
        Ok(Response::Error { message }) => state.error = Some(message),
        Ok(_) => state.error = Some("unexpected answer".into()),
        Err(err) => state.error = Some(crate::error_text::error_chain(&err)),
    }
}

fn key(code: KeyCode) -> Option<Key> {
    match code {
        KeyCode::Char('q') | KeyCode::Esc => Some(Key::Quit),
        KeyCode::Up | KeyCode::Char('k') => Some(Key::Up),
        KeyCode::Down | KeyCode::Char('j') => Some(Key::Down),
        KeyCode::Char('s') => Some(Key::NextSort),
        _ => None,
    }
}

/// Runs the view on the terminal until `q`; the terminal is restored
/// whatever happens.
pub fn run(socket: &Path, interval: Duration) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let result = (|| {
        let mut state = TopState::default();
        let mut next = Instant::now();
        loop {
            if Instant::now() >= next {
                refresh(&mut state, socket);
                next = Instant::now() + interval;
            }
            terminal.draw(|frame| draw::draw(frame, &state))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait)? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        if let Some(k) = key(k.code)
                            && !state.key(k)
                        {
                            return Ok(());
                        }
                    }
                    // A resize or anything else: redraw at once.
                    _ => {}
                }
            }
        }
    })();
    ratatui::restore();
    result
}
