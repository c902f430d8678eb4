//! The I/O edge: a gRPC client for BuildKit's `LLBBridge` gateway API.
//!
//! BuildKit runs the frontend container with a gRPC server on the other end
//! of the container's stdio: plain HTTP/2 with prior knowledge (h2c), the
//! server→frontend direction on stdin and frontend→server on stdout. This
//! module turns stdin+stdout into one duplex stream, hands it to tonic as the
//! only connection, and wraps the calls layerstack needs in [`Gateway`].
//!
//! Nothing else in the process may write to stdout: it is the wire. Log to
//! stderr (which ends up in buildkitd's log, not in front of the user).
//!
//! Must run inside a tokio runtime with I/O enabled (`enable_all`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::pb::fsstat::Stat;
use crate::pb::gateway::{self as gw, llb_bridge_client::LlbBridgeClient};
use crate::pb::rpc;
use llb_gen::pb;

/// BuildKit's gRPC message size limit, each way.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Gateway capability: results use `Ref`/`RefMap` rather than bare ids.
pub const CAP_PROTO_REF_ARRAY: &str = "proto.refarray";

/// `type_url` BuildKit registers for `errdefs.Source` error details. The
/// value is the JSON encoding (Go `encoding/json`) of the message, not
/// protobuf; see [`source_detail`].
pub const ERRDEFS_SOURCE_TYPE_URL: &str = "github.com/moby/buildkit/errdefs.Source+json";

/// gRPC status code UNKNOWN, used for frontend errors returned to BuildKit.
pub const CODE_UNKNOWN: i32 = 2;

/// An error from a gateway call: the gRPC code and message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// The gRPC status code (`Code::Unavailable` for transport failures).
    pub code: tonic::Code,
    /// The server's message, or a description of the local failure.
    pub message: String,
}

impl GatewayError {
    fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        GatewayError {
            code,
            message: message.into(),
        }
    }

    /// True if this looks like "file or directory does not exist".
    pub fn is_not_found(&self) -> bool {
        self.code == tonic::Code::NotFound || self.message.contains("no such file or directory")
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GatewayError {}

impl From<tonic::Status> for GatewayError {
    fn from(s: tonic::Status) -> Self {
        GatewayError::new(s.code(), s.message())
    }
}

impl From<tonic::transport::Error> for GatewayError {
    fn from(e: tonic::transport::Error) -> Self {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        GatewayError::new(
            tonic::Code::Unavailable,
            format!("gateway connection: {msg}"),
        )
    }
}

impl From<io::Error> for GatewayError {
    fn from(e: io::Error) -> Self {
        GatewayError::new(tonic::Code::Unavailable, format!("gateway stdio: {e}"))
    }
}

/// Result alias for gateway calls.
pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

/// What Ping reports: enabled capability ids.
#[derive(Debug, Clone, Default)]
pub struct Pong {
    /// Enabled gateway capabilities (`solve.base`, `proto.refarray`, ...).
    pub frontend_caps: BTreeSet<String>,
    /// Enabled LLB capabilities (`exec.mount.cache`, `mergeop`, ...).
    pub llb_caps: BTreeSet<String>,
}

/// The refs part of a result for [`Gateway::return_result`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ResultRefs {
    /// No ref (e.g. a subrequest answered with metadata only).
    #[default]
    None,
    /// One ref: a single-platform image.
    Single(String),
    /// Refs keyed by platform id (`linux/amd64`): a multi-platform index.
    Map(BTreeMap<String, String>),
}

/// A build result to hand back with [`Gateway::return_result`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultBuilder {
    /// The ref(s).
    pub refs: ResultRefs,
    /// Exporter metadata (`containerimage.config[/<platform>]`,
    /// `refs.platforms`, `result.json`, ...).
    pub metadata: BTreeMap<String, Vec<u8>>,
}

impl ResultBuilder {
    /// An empty result (no ref, no metadata).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the single ref (replacing any refs).
    pub fn set_ref(&mut self, ref_id: impl Into<String>) -> &mut Self {
        self.refs = ResultRefs::Single(ref_id.into());
        self
    }

    /// Add a ref keyed by platform id; turns the result into a ref map.
    pub fn add_ref(
        &mut self,
        platform_id: impl Into<String>,
        ref_id: impl Into<String>,
    ) -> &mut Self {
        if !matches!(self.refs, ResultRefs::Map(_)) {
            self.refs = ResultRefs::Map(BTreeMap::new());
        }
        if let ResultRefs::Map(m) = &mut self.refs {
            m.insert(platform_id.into(), ref_id.into());
        }
        self
    }

    /// Add a metadata entry.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The wire form. `ref_array` selects `Ref`/`RefMap` (servers with the
    /// `proto.refarray` capability, BuildKit >= v0.8) over the deprecated
    /// bare-id forms.
    pub fn into_proto(self, ref_array: bool) -> gw::Result {
        use gw::result::Result as R;
        let result = match self.refs {
            // No ref is sent as an empty id, as BuildKit's own client does.
            ResultRefs::None if ref_array => R::Ref(gw::Ref {
                id: String::new(),
                def: None,
            }),
            ResultRefs::None => R::RefDeprecated(String::new()),
            ResultRefs::Single(id) if ref_array => R::Ref(gw::Ref { id, def: None }),
            ResultRefs::Single(id) => R::RefDeprecated(id),
            ResultRefs::Map(m) if ref_array => R::Refs(gw::RefMap {
                refs: m
                    .into_iter()
                    .map(|(k, id)| (k, gw::Ref { id, def: None }))
                    .collect(),
            }),
            ResultRefs::Map(m) => R::RefsDeprecated(gw::RefMapDeprecated { refs: m }),
        };
        gw::Result {
            result: Some(result),
            metadata: self.metadata,
            attestations: BTreeMap::new(),
        }
    }
}

/// Builds an `errdefs.Source` error detail (file + line ranges) the way
/// BuildKit encodes it: `type_url` [`ERRDEFS_SOURCE_TYPE_URL`] and a JSON
/// value. Pass it to [`Gateway::return_error`]; buildx then prints the
/// offending lines of the file under the error.
pub fn source_detail(info: &pb::SourceInfo, ranges: &[pb::Range]) -> prost_types::Any {
    fn pos(p: Option<pb::Position>) -> serde_json::Value {
        let p = p.unwrap_or_default();
        serde_json::json!({ "line": p.line, "character": p.character })
    }
    let mut info_json = serde_json::Map::new();
    info_json.insert("filename".into(), info.filename.clone().into());
    if !info.data.is_empty() {
        info_json.insert("data".into(), base64_std(&info.data).into());
    }
    if !info.language.is_empty() {
        info_json.insert("language".into(), info.language.clone().into());
    }
    let ranges: Vec<_> = ranges
        .iter()
        .map(|r| serde_json::json!({ "start": pos(r.start), "end": pos(r.end) }))
        .collect();
    let value = serde_json::json!({ "info": info_json, "ranges": ranges });
    prost_types::Any {
        type_url: ERRDEFS_SOURCE_TYPE_URL.to_string(),
        value: serde_json::to_vec(&value).expect("JSON of plain values"),
    }
}

/// Standard base64 with padding (what Go's encoding/json uses for []byte).
pub(crate) fn base64_std(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// What another frontend answered ([`Gateway::solve_frontend`]).
#[derive(Debug)]
pub struct FrontendResult {
    pub id: String,
    /// The result's LLB, as BuildKit sent it; the frontend never looks inside.
    pub definition: pb::Definition,
    /// The key of a one-entry ref map (a platform id), None for a single ref.
    pub platform: Option<String>,
    pub metadata: BTreeMap<String, Vec<u8>>,
}

impl FrontendResult {
    /// The `containerimage.config` the frontend answered (also under `/<platform>`).
    pub fn image_config(&self) -> Option<&Vec<u8>> {
        self.metadata.get("containerimage.config").or_else(|| {
            self.platform
                .as_ref()
                .and_then(|p| self.metadata.get(&format!("containerimage.config/{p}")))
        })
    }
}

/// A client of BuildKit's gateway API. Cheap to clone; calls may run
/// concurrently.
#[derive(Clone)]
pub struct Gateway {
    client: LlbBridgeClient<Channel>,
    /// Gateway caps from the first [`Gateway::ping`], if any.
    frontend_caps: Arc<OnceLock<BTreeSet<String>>>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Connects to BuildKit over this process's stdin/stdout.
    pub async fn connect() -> Result<Gateway> {
        let io = stdio_stream()?;
        let slot = Arc::new(Mutex::new(Some(io)));
        let connector = tower::service_fn(move |_: Uri| {
            let slot = slot.clone();
            async move {
                let io = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                io.map(hyper_util::rt::TokioIo::new).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotConnected,
                        "gateway stdio connection already used",
                    )
                })
            }
        });
        let channel = Endpoint::from_static("http://buildkit")
            .connect_with_connector(connector)
            .await?;
        Ok(Self::from_channel(channel))
    }

    /// Wraps an existing channel (e.g. for tests against a local server).
    pub fn from_channel(channel: Channel) -> Gateway {
        let client = LlbBridgeClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Gateway {
            client,
            frontend_caps: Arc::new(OnceLock::new()),
        }
    }

    fn client(&self) -> LlbBridgeClient<Channel> {
        self.client.clone()
    }

    /// Asks BuildKit for its capabilities.
    pub async fn ping(&self) -> Result<Pong> {
        let resp = self.client().ping(gw::PingRequest {}).await?.into_inner();
        let enabled = |caps: Vec<pb::apicaps::ApiCap>| -> BTreeSet<String> {
            caps.into_iter()
                .filter(|c| c.enabled)
                .map(|c| c.id)
                .collect()
        };
        let pong = Pong {
            frontend_caps: enabled(resp.frontend_api_caps),
            llb_caps: enabled(resp.llb_caps),
        };
        let _ = self.frontend_caps.set(pong.frontend_caps.clone());
        Ok(pong)
    }

    /// Resolves an image reference to its manifest digest and config JSON.
    /// `resolve_mode` is `"default"`, `"pull"` or `"local"` (empty = default).
    pub async fn resolve_image_config(
        &self,
        reference: &str,
        platform: Option<pb::Platform>,
        resolve_mode: &str,
        log_name: &str,
    ) -> Result<(String, Vec<u8>)> {
        let req = gw::ResolveImageConfigRequest {
            r#ref: reference.to_string(),
            platform,
            resolve_mode: resolve_mode.to_string(),
            log_name: log_name.to_string(),
            ..Default::default()
        };
        let resp = self.client().resolve_image_config(req).await?.into_inner();
        Ok((resp.digest, resp.config))
    }

    /// Solves a definition and returns the result's ref id (empty if the
    /// definition has no result, e.g. scratch).
    pub async fn solve(&self, def: pb::Definition) -> Result<String> {
        self.solve_with_cache_imports(def, Vec::new()).await
    }

    /// Like [`Gateway::solve`], also importing the given caches
    /// (`cache-imports`/`cache-from` opts; see `opts::CacheImport`).
    pub async fn solve_with_cache_imports(
        &self,
        def: pb::Definition,
        cache_imports: Vec<gw::CacheOptionsEntry>,
    ) -> Result<String> {
        let req = gw::SolveRequest {
            definition: Some(def),
            allow_result_return: true,
            allow_result_array_ref: true,
            r#final: false,
            cache_imports,
            ..Default::default()
        };
        let resp = self.client().solve(req).await?.into_inner();
        use gw::result::Result as R;
        match resp.result.and_then(|r| r.result) {
            Some(R::Ref(r)) => Ok(r.id),
            Some(R::RefDeprecated(id)) => Ok(id),
            Some(R::Refs(_) | R::RefsDeprecated(_)) => Err(GatewayError::new(
                tonic::Code::Internal,
                "solve returned a ref map where a single ref was expected",
            )),
            None => Ok(resp.r#ref),
        }
    }

    /// Solves with another frontend (`dockerfile.v0`): its options and inputs, our cache
    /// imports. The answer is the result ref's id, its Definition (kept opaque: the converter
    /// splices it) and the result's metadata. A single-platform result is one ref; a map
    /// with one entry is taken as that ref (its metadata keys keep their platform suffix).
    pub async fn solve_frontend(
        &self,
        frontend: &str,
        frontend_opt: BTreeMap<String, String>,
        frontend_inputs: BTreeMap<String, pb::Definition>,
        cache_imports: Vec<gw::CacheOptionsEntry>,
    ) -> Result<FrontendResult> {
        let req = gw::SolveRequest {
            frontend: frontend.to_string(),
            frontend_opt,
            frontend_inputs,
            allow_result_return: true,
            allow_result_array_ref: true,
            r#final: false,
            cache_imports,
            ..Default::default()
        };
        let resp = self.client().solve(req).await?.into_inner();
        let Some(result) = resp.result else {
            return Err(GatewayError::new(
                tonic::Code::Internal,
                format!("the {frontend} frontend returned no result"),
            ));
        };
        use gw::result::Result as R;
        let (id, def, platform) = match result.result {
            Some(R::Ref(r)) => (r.id, r.def, None),
            Some(R::Refs(m)) if m.refs.len() == 1 => {
                let (k, r) = m.refs.into_iter().next().expect("one entry");
                (r.id, r.def, Some(k))
            }
            _ => {
                return Err(GatewayError::new(
                    tonic::Code::Internal,
                    format!(
                        "the {frontend} frontend returned no single result with its definition"
                    ),
                ));
            }
        };
        let Some(definition) = def else {
            return Err(GatewayError::new(
                tonic::Code::Unimplemented,
                format!(
                    "the {frontend} frontend's result came without its definition (BuildKit too old)"
                ),
            ));
        };
        Ok(FrontendResult {
            id,
            definition,
            platform,
            metadata: result.metadata,
        })
    }

    /// The frontend inputs the client sent (bake `target:` contexts): name → Definition.
    pub async fn inputs(&self) -> Result<BTreeMap<String, pb::Definition>> {
        let resp = self
            .client()
            .inputs(gw::InputsRequest {})
            .await?
            .into_inner();
        Ok(resp.definitions.into_iter().collect())
    }

    /// Reads a file from a solved ref; `range` = `(offset, length)`.
    pub async fn read_file(
        &self,
        reference: &str,
        path: &str,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<u8>> {
        let req = gw::ReadFileRequest {
            r#ref: reference.to_string(),
            file_path: path.to_string(),
            range: range.map(|(offset, length)| gw::FileRange { offset, length }),
            mount_index: 0,
        };
        Ok(self.client().read_file(req).await?.into_inner().data)
    }

    /// The entries of directory `dir` in a solved ref whose names match `pattern` (one
    /// level); `None` if the directory does not exist.
    pub async fn read_dir(
        &self,
        reference: &str,
        dir: &str,
        pattern: &str,
    ) -> Result<Option<Vec<Stat>>> {
        let req = gw::ReadDirRequest {
            r#ref: reference.to_string(),
            dir_path: dir.to_string(),
            include_pattern: pattern.to_string(),
            mount_index: 0,
        };
        match self.client().read_dir(req).await {
            Ok(resp) => Ok(Some(resp.into_inner().entries)),
            Err(status) => {
                let err = GatewayError::from(status);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Stats a path in a solved ref; `None` if it does not exist.
    pub async fn stat_file(&self, reference: &str, path: &str) -> Result<Option<Stat>> {
        let req = gw::StatFileRequest {
            r#ref: reference.to_string(),
            path: path.to_string(),
            mount_index: 0,
        };
        match self.client().stat_file(req).await {
            Ok(resp) => Ok(resp.into_inner().stat),
            Err(status) => {
                let err = GatewayError::from(status);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Emits a build warning (gateway cap `gateway.warnings`, BuildKit
    /// >= v0.13). `digest` is the vertex it belongs to (may be empty).
    pub async fn warn(
        &self,
        digest: &str,
        level: i64,
        short: &str,
        detail: Vec<Vec<u8>>,
        url: &str,
        source: Option<(pb::SourceInfo, Vec<pb::Range>)>,
    ) -> Result<()> {
        let (info, ranges) = match source {
            Some((i, r)) => (Some(i), r),
            None => (None, Vec::new()),
        };
        let req = gw::WarnRequest {
            digest: digest.to_string(),
            level,
            short: short.as_bytes().to_vec(),
            detail,
            url: url.to_string(),
            info,
            ranges,
        };
        self.client().warn(req).await?;
        Ok(())
    }

    /// Returns the build result to BuildKit. Call exactly once, at the end.
    pub async fn return_result(&self, result: ResultBuilder) -> Result<()> {
        let ref_array = self
            .frontend_caps
            .get()
            .is_none_or(|caps| caps.contains(CAP_PROTO_REF_ARRAY));
        let req = gw::ReturnRequest {
            result: Some(result.into_proto(ref_array)),
            error: None,
        };
        self.client().r#return(req).await?;
        Ok(())
    }

    /// Returns a build failure to BuildKit (gRPC code UNKNOWN) with optional
    /// details, e.g. [`source_detail`]. Call exactly once, at the end.
    pub async fn return_error(&self, message: &str, details: Vec<prost_types::Any>) -> Result<()> {
        let req = gw::ReturnRequest {
            result: None,
            error: Some(rpc::Status {
                code: CODE_UNKNOWN,
                message: message.to_string(),
                details,
            }),
        };
        self.client().r#return(req).await?;
        Ok(())
    }
}

type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// stdin (read half) + stdout (write half) as one duplex stream.
struct Stdio {
    rd: BoxRead,
    wr: BoxWrite,
}

/// Opens stdin/stdout for async I/O. Pipes (as under BuildKit) and Unix
/// sockets are switched to non-blocking mode and driven by the reactor, so
/// no thread is left blocked in a read when the frontend exits. Anything
/// else falls back to tokio's stdio, whose blocking stdin read can delay
/// runtime shutdown: end such a process with `std::process::exit`.
fn stdio_stream() -> io::Result<Stdio> {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;

    let stdin_fd = || io::stdin().as_fd().try_clone_to_owned();
    let rd: BoxRead = if let Ok(r) = pipe::Receiver::from_owned_fd(stdin_fd()?) {
        Box::pin(r)
    } else if let Some(s) = unix_socket(stdin_fd()?) {
        Box::pin(s)
    } else {
        Box::pin(tokio::io::stdin())
    };

    let stdout_fd = || io::stdout().as_fd().try_clone_to_owned();
    let wr: BoxWrite = if let Ok(w) = pipe::Sender::from_owned_fd(stdout_fd()?) {
        Box::pin(w)
    } else if let Some(s) = unix_socket(stdout_fd()?) {
        Box::pin(s)
    } else {
        Box::pin(tokio::io::stdout())
    };
    Ok(Stdio { rd, wr })
}

/// `fd` as a non-blocking tokio Unix socket, if it is one.
fn unix_socket(fd: std::os::fd::OwnedFd) -> Option<tokio::net::UnixStream> {
    let s = std::os::unix::net::UnixStream::from(fd);
    s.peer_addr().ok()?; // fails (ENOTSOCK, ...) unless fd is a Unix socket
    s.set_nonblocking(true).ok()?;
    tokio::net::UnixStream::from_std(s).ok()
}

impl AsyncRead for Stdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.rd.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.wr.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.wr.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.wr.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wr.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wr.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn base64_matches_go() {
        assert_eq!(base64_std(b""), "");
        assert_eq!(base64_std(b"f"), "Zg==");
        assert_eq!(base64_std(b"fo"), "Zm8=");
        assert_eq!(base64_std(b"foo"), "Zm9v");
        assert_eq!(base64_std(b"foob"), "Zm9vYg==");
        assert_eq!(base64_std(b"[a]\nb = 1\n"), "W2FdCmIgPSAxCg==");
        assert_eq!(base64_std(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn source_detail_json() {
        let info = pb::SourceInfo {
            filename: "stack.toml".into(),
            data: b"x".to_vec(),
            language: "TOML".into(),
            definition: None,
        };
        let r = pb::Range {
            start: Some(pb::Position {
                line: 3,
                character: 0,
            }),
            end: Some(pb::Position {
                line: 4,
                character: 2,
            }),
        };
        let any = source_detail(&info, &[r]);
        assert_eq!(any.type_url, "github.com/moby/buildkit/errdefs.Source+json");
        let v: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "info": {"filename": "stack.toml", "data": "eA==", "language": "TOML"},
                "ranges": [{"start": {"line": 3, "character": 0}, "end": {"line": 4, "character": 2}}]
            })
        );
    }

    #[test]
    fn result_wire_forms() {
        use gw::result::Result as R;
        let mut b = ResultBuilder::new();
        b.set_ref("r1");
        b.add_metadata("containerimage.config", b"{}".to_vec());
        let p = b.clone().into_proto(true);
        assert_eq!(
            p.result,
            Some(R::Ref(gw::Ref {
                id: "r1".into(),
                def: None
            }))
        );
        assert_eq!(p.metadata["containerimage.config"], b"{}");
        assert_eq!(
            b.into_proto(false).result,
            Some(R::RefDeprecated("r1".into()))
        );

        let mut m = ResultBuilder::new();
        m.add_ref("linux/arm64", "b").add_ref("linux/amd64", "a");
        match m.clone().into_proto(true).result {
            Some(R::Refs(rm)) => {
                assert_eq!(
                    rm.refs.keys().collect::<Vec<_>>(),
                    ["linux/amd64", "linux/arm64"]
                );
                assert_eq!(rm.refs["linux/amd64"].id, "a");
            }
            other => panic!("unexpected {other:?}"),
        }
        match m.into_proto(false).result {
            Some(R::RefsDeprecated(rm)) => assert_eq!(rm.refs["linux/arm64"], "b"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            ResultBuilder::new().into_proto(true).result,
            Some(R::Ref(gw::Ref {
                id: String::new(),
                def: None
            }))
        );
    }

    #[test]
    fn gateway_field_numbers() {
        // Spot checks against BuildKit's gateway.proto: tag = (field << 3) | wire type.
        let req = gw::SolveRequest {
            allow_result_array_ref: true,
            ..Default::default()
        };
        assert_eq!(req.encode_to_vec(), vec![6 << 3, 1]);
        let req = gw::SolveRequest {
            r#final: true,
            ..Default::default()
        };
        assert_eq!(req.encode_to_vec(), vec![10 << 3, 1]);
        let res = gw::Result {
            metadata: [("k".to_string(), b"v".to_vec())].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(
            res.encode_to_vec(),
            vec![(10 << 3) | 2, 6, 10, 1, b'k', 18, 1, b'v']
        );
        let ret = gw::ReturnRequest {
            error: Some(rpc::Status {
                code: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ret.encode_to_vec(), vec![(2 << 3) | 2, 2, 1 << 3, 2]);
        let pong = gw::PongResponse {
            workers: vec![Default::default()],
            ..Default::default()
        };
        assert_eq!(pong.encode_to_vec(), vec![(3 << 3) | 2, 0]);
    }

    #[test]
    fn not_found_detection() {
        let e = GatewayError::new(tonic::Code::Unknown, "stat /x: no such file or directory");
        assert!(e.is_not_found());
        assert!(!GatewayError::new(tonic::Code::Unknown, "permission denied").is_not_found());
    }
}
