//! The control protocol: the client writes one JSON [`Request`] line, the
//! daemon answers with one JSON [`Response`] line and closes. JSON keeps it
//! debuggable with `socat` and lets `lbd status --json` pass the daemon's
//! answer through unchanged.
//!
//! The one exception is [`Request::Connections`]: a flow table can hold
//! hundreds of thousands of flows, so the answer is a stream of
//! [`Response::Flows`] lines of at most a thousand flows each, ended by
//! one [`Response::FlowsEnd`] (or an [`Response::Error`]).

use serde::{Deserialize, Serialize};

use super::status::StatusReport;
use crate::dataplane::{FlowEntry, FlowQuery, FlowScan};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// The tracked flows that match (`ipvsadm -Lnc`), streamed.
    Connections(FlowQuery),
    /// Re-read the configuration file.
    Reload,
    /// Manual failover of a MASTER instance.
    Failover {
        instance: String,
    },
    /// Maintenance on/off for one instance, or every one (`None`).
    Maintenance {
        instance: Option<String>,
        on: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Status(Box<StatusReport>),
    /// Some of the flows a [`Request::Connections`] asked for.
    Flows {
        flows: Vec<FlowEntry>,
    },
    /// The end of a flow listing: what the walk saw.
    FlowsEnd(FlowScan),
    /// Done; the text says what happened.
    Done {
        message: String,
    },
    /// Refused or failed; nothing changed. The text says why.
    Error {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line_each() {
        let cases = [
            (Request::Status, r#"{"request":"status"}"#),
            (Request::Reload, r#"{"request":"reload"}"#),
            (
                Request::Connections(FlowQuery {
                    client: Some("10.0.0.2".parse().unwrap()),
                    ..FlowQuery::default()
                }),
                r#"{"request":"connections","protocol":null,"service":null,"real_server":null,"client":{"ip":"10.0.0.2","port":null}}"#,
            ),
            (
                Request::Failover {
                    instance: "VI_1".into(),
                },
                r#"{"request":"failover","instance":"VI_1"}"#,
            ),
            (
                Request::Maintenance {
                    instance: None,
                    on: true,
                },
                r#"{"request":"maintenance","instance":null,"on":true}"#,
            ),
        ];
        for (request, json) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), json);
            assert_eq!(serde_json::from_str::<Request>(json).unwrap(), request);
        }
        let done = Response::Done {
            message: "ok".into(),
        };
        let text = serde_json::to_string(&done).unwrap();
        assert_eq!(text, r#"{"response":"done","message":"ok"}"#);
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), done);
    }
}
