//! NATS JetStream for pxsync: the namespace's order stream, publishing events with their
//! deterministic id as `Nats-Msg-Id`, and the projector's durable pull consumer.
//!
//! JetStream is transport and a replay buffer, not the archive (the event log in Postgres is):
//! the stream has a bounded max age. Headers carry the event id, kind, schema version and W3C
//! `traceparent`, never personal data.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use pxsync_core::event::{EventEnvelope, encode};
use pxsync_core::namespace::Namespace;
use std::time::Duration;

pub use async_nats::jetstream::Message;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats: cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("nats: {context}: {detail}")]
    JetStream {
        context: &'static str,
        detail: String,
    },
}

fn js_err(context: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> BusError {
    move |e| BusError::JetStream {
        context,
        detail: e.to_string(),
    }
}

/// Stream settings.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Events older than this leave the stream (they stay in the event log).
    pub max_age: Duration,
    /// Window in which a republished event id is dropped by JetStream.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// The trace context header (W3C), beside `Nats-Msg-Id`, the only headers pxsync sets. The
/// kind and the schema version are in the payload, where the projector reads them: headers
/// repeating them cost the ingestor a map insert and an allocation each per event.
pub const HEADER_TRACEPARENT: &str = "traceparent";

/// An event as it goes on the bus: its subject, id, trace context and payload bytes. Made
/// where the CPU is free (the ingestor encodes a page on a blocking thread), published later
/// with [`Bus::publish_encoded`].
#[derive(Debug, Clone)]
pub struct Encoded {
    pub subject: String,
    pub event_id: uuid::Uuid,
    pub traceparent: Option<String>,
    pub payload: Vec<u8>,
}

impl Encoded {
    /// `event` encoded for the namespace `ns`.
    pub fn of(ns: &Namespace, event: &EventEnvelope) -> Encoded {
        Encoded {
            subject: ns.order_subject(&event.planexpo_event, &event.order_id),
            event_id: event.event_id,
            traceparent: event.traceparent.clone(),
            payload: encode(event),
        }
    }
}

#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
}

impl Bus {
    pub async fn connect(url: &str, ns: &Namespace) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("pxsync-{}", ns))
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| BusError::Connect {
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        Ok(Bus {
            client,
            js,
            ns: ns.clone(),
        })
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates the namespace's stream if it is missing (file storage, its own subjects).
    pub async fn ensure_stream(
        &self,
        settings: &StreamSettings,
    ) -> Result<stream::Stream, BusError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: self.ns.stream(),
                subjects: vec![self.ns.orders_wildcard()],
                storage: stream::StorageType::File,
                max_age: settings.max_age,
                duplicate_window: settings.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| js_err("create the stream")(&e))
    }

    /// Publishes one event and returns once JetStream acknowledged it.
    pub async fn publish(&self, event: &EventEnvelope) -> Result<(), BusError> {
        self.publish_async(event)
            .await?
            .await
            .map(|_| ())
            .map_err(|e| js_err("publish acknowledgement")(&e))
    }

    /// Publishes one event; the returned future resolves on JetStream's acknowledgement (to keep
    /// many in flight).
    pub async fn publish_async(
        &self,
        event: &EventEnvelope,
    ) -> Result<jetstream::context::PublishAckFuture, BusError> {
        self.publish_encoded(Encoded::of(&self.ns, event)).await
    }

    /// Publishes an event encoded beforehand (see [`Encoded`]); the returned future resolves on
    /// JetStream's acknowledgement.
    pub async fn publish_encoded(
        &self,
        encoded: Encoded,
    ) -> Result<jetstream::context::PublishAckFuture, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            encoded.event_id.to_string().as_str(),
        );
        if let Some(tp) = &encoded.traceparent {
            headers.insert(HEADER_TRACEPARENT, tp.as_str());
        }
        self.js
            .publish_with_headers(encoded.subject, headers, encoded.payload.into())
            .await
            .map_err(|e| js_err("publish")(&e))
    }

    /// The projector's durable pull consumer (created if missing; shared by every projector
    /// process of the namespace).
    pub async fn projector_consumer(
        &self,
        settings: &StreamSettings,
    ) -> Result<consumer::PullConsumer, BusError> {
        let stream = self.ensure_stream(settings).await?;
        stream
            .get_or_create_consumer(
                "projector",
                consumer::pull::Config {
                    durable_name: Some("projector".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 20_000,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| js_err("create the projector consumer")(&e))
    }

    /// Deletes the namespace's stream (tests, `pxsync reset`). Missing is fine.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        match self.js.delete_stream(self.ns.stream()).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(js_err("delete the stream")(&e)),
        }
    }

    /// Messages not yet delivered to / acknowledged by the projector (lag).
    pub async fn projector_lag(&self) -> Result<(u64, usize), BusError> {
        let stream = self
            .js
            .get_stream(self.ns.stream())
            .await
            .map_err(|e| js_err("get the stream")(&e))?;
        let mut consumer: consumer::PullConsumer = stream
            .get_consumer("projector")
            .await
            .map_err(|e| js_err("get the consumer")(&e))?;
        let info = consumer
            .info()
            .await
            .map_err(|e| js_err("consumer info")(&e))?;
        Ok((info.num_pending, info.num_ack_pending))
    }
}
