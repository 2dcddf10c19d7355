//! Drawing `lbd top` with ratatui: a heading line, the services, the picked
//! service's real servers, the VRRP instances and a key line. Columns are
//! chosen by the terminal's width (a narrow terminal drops the least
//! needed ones) and cells are cut, never wrapped, so a resize redraws
//! cleanly at any size.

use ratatui::{
    Frame,
    layout::{Constraint, Flex, Layout},
    style::{Modifier, Style},
    text::Line,
    widgets::{Block, Cell, Paragraph, Row, Table, TableState},
};

use super::model::{TopState, label};
use crate::daemon::{
    rates::RateView,
    status::{RealServerView, ServiceView},
};

/// From this width on, every column is shown.
const WIDE: u16 = 120;

/// A count in at most 6 characters: 999999, 1.2M, 12.3G.
pub fn short(n: u64) -> String {
    match n {
        0..1_000_000 => n.to_string(),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.1}G", n as f64 / 1e9),
        _ => format!("{:.1}T", n as f64 / 1e12),
    }
}

fn rate_cells(r: &RateView, wide: bool) -> Vec<String> {
    let mut cells = vec![
        short(r.cps),
        short(r.in_pps),
        short(r.out_pps),
        short(r.in_bps),
    ];
    if wide {
        cells.push(short(r.out_bps));
    }
    cells
}

fn rate_heading(wide: bool) -> Vec<&'static str> {
    let mut h = vec!["CPS", "InPPS", "OutPPS", "InBPS"];
    if wide {
        h.push("OutBPS");
    }
    h
}

/// A column as wide as its widest cell or heading.
fn fitted(widest: usize, heading: &str) -> Constraint {
    Constraint::Length(u16::try_from(widest.max(heading.len())).unwrap_or(u16::MAX))
}

fn numbers(n: usize) -> impl Iterator<Item = Constraint> {
    std::iter::repeat_n(Constraint::Length(6), n)
}

fn health(r: &RealServerView) -> String {
    let word = match &r.health {
        None => "-",
        Some(h) if h.up => "up",
        Some(_) => "DOWN",
    };
    match (r.draining, r.in_pool) {
        (true, _) => format!("{word} drain"),
        // Its check took it out of the pool (quiescent=no).
        (false, false) => format!("{word} out"),
        (false, true) => word.to_owned(),
    }
}

fn services_table<'a>(services: &[&'a ServiceView], wide: bool, sort: &str) -> Table<'a> {
    let mut heading = vec!["Service", "Sched", "Active", "InAct"];
    heading.extend(rate_heading(wide));
    if wide {
        heading.push("Conns");
    }
    let rows = services.iter().map(|s| {
        let (active, inactive) = s.real_servers.iter().fold((0, 0), |(a, i), r| {
            (a + r.active_connections, i + r.inactive_connections)
        });
        let mut cells = vec![
            label(s),
            s.scheduler.clone(),
            short(active),
            short(inactive),
        ];
        cells.extend(rate_cells(&s.rates, wide));
        if wide {
            cells.push(short(s.stats.connections));
        }
        Row::new(cells)
    });
    let name = services.iter().map(|s| label(s).len()).max().unwrap_or(0);
    let mut widths = vec![
        fitted(name, "Service"),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    widths.extend(numbers(rate_heading(wide).len() + usize::from(wide)));
    Table::new(rows, widths)
        .flex(Flex::Start)
        .header(Row::new(heading).style(Style::new().add_modifier(Modifier::BOLD)))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ")
        .block(Block::bordered().title(format!(" Services (sorted by {sort}) ")))
}

fn reals_table<'a>(service: &ServiceView, reals: &[&'a RealServerView], wide: bool) -> Table<'a> {
    let mut heading = vec!["Real server", "Health", "Weight", "Active", "InAct"];
    heading.extend(rate_heading(wide));
    let rows = reals.iter().map(|r| {
        let mut cells = vec![
            r.address.clone(),
            health(r),
            r.weight.to_string(),
            short(r.active_connections),
            short(r.inactive_connections),
        ];
        cells.extend(rate_cells(&r.rates, wide));
        Row::new(cells)
    });
    let name = reals.iter().map(|r| r.address.len()).max().unwrap_or(0);
    let mut widths = vec![
        fitted(name, "Real server"),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    widths.extend(numbers(rate_heading(wide).len()));
    Table::new(rows, widths)
        .flex(Flex::Start)
        .header(Row::new(heading).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(format!(" Real servers of {} ", label(service))))
}

fn vrrp_table(state: &TopState) -> Table<'_> {
    let instances = state
        .report
        .as_ref()
        .map(|r| r.vrrp_instances.as_slice())
        .unwrap_or_default();
    let rows = instances.iter().map(|i| {
        let master = match (i.master, i.master_priority) {
            (Some(a), Some(p)) => format!("{a} ({p})"),
            _ => "-".to_owned(),
        };
        let vips: Vec<String> = i.vips.iter().map(ToString::to_string).collect();
        let state = if i.maintenance {
            format!("{} maint", i.state)
        } else {
            i.state.clone()
        };
        Row::new(vec![
            Cell::from(i.name.clone()),
            Cell::from(state),
            Cell::from(i.priority.to_string()),
            Cell::from(master),
            Cell::from(vips.join(" ")),
        ])
    });
    let widths = [
        Constraint::Length(14),
        Constraint::Length(13),
        Constraint::Length(4),
        Constraint::Length(22),
        Constraint::Min(10),
    ];
    Table::new(rows, widths)
        .flex(Flex::Start)
        .header(
            Row::new(["Instance", "State", "Prio", "Master", "VIPs"])
                .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .block(Block::bordered().title(" VRRP instances "))
}

fn heading(state: &TopState) -> Line<'_> {
    let Some(r) = &state.report else {
        return Line::from(format!(
            "lbd top: {}",
            state.error.as_deref().unwrap_or("waiting for lbd...")
        ));
    };
    let rates = r.rate_window_ms.map_or_else(
        || "rates not measured yet".to_owned(),
        |ms| format!("rates/s over the last {:.1} s", ms as f64 / 1000.0),
    );
    let mut text = format!(
        "lbd {} | {} data plane | {rates}",
        r.version,
        r.dataplane.as_deref().unwrap_or("no")
    );
    if let Some(error) = &state.error {
        text = format!("{text} | STALE: {error}");
    }
    Line::from(text)
}

/// Draws the whole view into `frame`.
pub fn draw(frame: &mut Frame, state: &TopState) {
    let area = frame.area();
    let wide = area.width >= WIDE;
    let services = state.services();
    let reals = state.real_servers();
    let instances = state.report.as_ref().map_or(0, |r| r.vrrp_instances.len());
    // A table's rows plus its borders and heading; spare rows go to the
    // real servers.
    let rows = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).saturating_add(3);
    let [top, services_area, reals_area, vrrp_area, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(rows(services.len())),
        Constraint::Min(rows(reals.as_ref().map_or(0, |(_, r)| r.len()))),
        Constraint::Length(rows(instances)),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(heading(state)), top);
    let mut table_state = TableState::default().with_selected(state.picked_index());
    frame.render_stateful_widget(
        services_table(&services, wide, state.sort.label()),
        services_area,
        &mut table_state,
    );
    if let Some((service, reals)) = &reals {
        frame.render_widget(reals_table(service, reals, wide), reals_area);
    }
    frame.render_widget(vrrp_table(state), vrrp_area);
    frame.render_widget(
        Paragraph::new("q quit  up/down pick a service  s sort by the next column"),
        keys,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::daemon::status::StatusReport;

    fn report() -> StatusReport {
        serde_json::from_str(
            r#"{"version":"0.1.0","dataplane":"XDP","config":"c","started_at":0,"reloaded_at":null,
            "reloads_ok":0,"reloads_failed":0,"vrrp_unmatched":0,"xdp_counters":{},"rate_window_ms":2000,
            "vrrp_instances":[{"name":"VI_1","state":"MASTER","priority":150,"master":"10.111.1.1",
            "master_priority":150,"vips":["10.111.1.100"],"last_transition":0,"maintenance":false,
            "counters":{"adverts_sent":0,"adverts_received":0,"priority_zero_sent":0,
            "priority_zero_received":0,"became_master":1,"released_master":0,"dropped":{}}}],
            "services":[{"protocol":"TCP","vip":"10.111.1.100","port":80,"address":"10.111.1.100:80",
            "scheduler":"rr","stats":{"connections":7,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0},
            "rates":{"cps":12,"in_pps":345,"out_pps":300,"in_bps":123456,"out_bps":7654321},
            "real_servers":[{"ip":"10.111.2.2","port":8080,"address":"10.111.2.2:8080","weight":1,
            "active_connections":3,"inactive_connections":1,"draining":false,
            "health":{"up":true,"last_result":"ok"},
            "rates":{"cps":12,"in_pps":345,"out_pps":300,"in_bps":123456,"out_bps":7654321},
            "stats":{"connections":7,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0}}]}]}"#,
        )
        .unwrap()
    }

    fn screen(width: u16, height: u16) -> Vec<String> {
        let state = TopState {
            report: Some(report()),
            ..TopState::default()
        };
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, &state)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect()
    }

    fn line_with<'a>(screen: &'a [String], text: &str) -> &'a str {
        screen
            .iter()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no line shows {text}:\n{}", screen.join("\n")))
    }

    #[test]
    fn fits_80_columns_and_shows_more_at_200() {
        let narrow = screen(80, 24);
        let service = line_with(&narrow, "TCP 10.111.1.100:80");
        for word in ["rr", "3", "1", "12", "345", "300", "123456"] {
            assert!(
                service.split_whitespace().any(|w| w == word),
                "{word} in {service}"
            );
        }
        let real = line_with(&narrow, "10.111.2.2:8080");
        assert!(real.contains(" up "), "{real}");
        let vrrp = line_with(&narrow, "VI_1");
        assert!(
            vrrp.contains("MASTER") && vrrp.contains("10.111.1.100"),
            "{vrrp}"
        );
        assert!(
            !narrow.iter().any(|l| l.contains("OutBPS")),
            "no room at 80"
        );

        let wide = screen(200, 24);
        let service = line_with(&wide, "TCP 10.111.1.100:80");
        assert!(service.contains("7.7M"), "OutBPS at 200 columns: {service}");
        line_with(&wide, "OutBPS");
        assert!(line_with(&wide, "lbd 0.1.0").contains("over the last 2.0 s"));
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let tiny = screen(20, 5);
        assert_eq!(tiny.len(), 5);
    }
}
