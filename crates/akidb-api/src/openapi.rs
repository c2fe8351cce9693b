//! The OpenAPI 3.1 document served at `GET /openapi.json`.
//!
//! Written by hand next to the wire types it describes; the server's tests check that every
//! route it serves is documented here and every documented path is served.

use serde_json::{Value, json};

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn ok(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn errors(codes: &[u16]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            code.to_string(),
            json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(map)
}

fn responses(success: (&str, Value), error_codes: &[u16]) -> Value {
    let mut r = errors(error_codes);
    r.as_object_mut()
        .unwrap()
        .insert(success.0.to_string(), success.1);
    r
}

/// `responses` with a second success, 200.
fn also_200(mut responses: Value, ok: Value) -> Value {
    responses["200"] = ok;
    responses
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 128}})
}

fn key_param() -> Value {
    json!({"name": "key_id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 64}})
}

/// The document, with the access rules of [`crate::ROUTES`] laid over it: every route that
/// needs a key carries the security requirement and its 401, 403 and 429 answers, every route
/// with a body the body's errors (400, 408, 413, 415, 422, and 503 for body memory), and the
/// search its 504.
pub fn openapi() -> Value {
    let mut doc = document();
    let paths = doc["paths"].as_object_mut().expect("paths");
    for route in crate::ROUTES.iter().filter(|r| r.openapi) {
        let Some(op) = paths
            .get_mut(route.path)
            .and_then(|p| p.get_mut(route.method.to_lowercase()))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut extra: Vec<u16> = Vec::new();
        match route.access {
            crate::Access::Open => {
                op.insert("security".into(), json!([]));
            }
            crate::Access::Metrics => {
                op.insert(
                    "security".into(),
                    json!([{}, {"bearer": []}, {"api-key": []}]),
                );
                extra.push(401);
            }
            _ => extra.extend([401, 403, 429]),
        }
        if op.contains_key("requestBody") {
            extra.extend([400, 408, 413, 415, 422, 503]);
        }
        if route.path.ends_with("/search") {
            extra.push(504);
        }
        let responses = op
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("responses");
        for (code, v) in errors(&extra).as_object().expect("errors").clone() {
            responses.entry(code).or_insert(v);
        }
    }
    doc
}

fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "AkiDB",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A vector database for data that is mostly cold. Every error is {\"error\": {\"code\", \"message\", \"field\"?}} with a stable code. With API keys configured, send one as Authorization: Bearer KEY or api-key: KEY; its role (read, write, admin) and collection patterns decide what it may call."
        },
        "security": [{"bearer": []}, {"api-key": []}],
        "paths": paths(),
        "components": {
          "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
            "api-key": {"type": "apiKey", "in": "header", "name": "api-key", "description": "api-key: KEY (as Qdrant clients send it)"}
          },
          "schemas": schemas()
        }
    })
}

fn paths() -> Value {
    let body_errors = [400, 413, 415, 422];
    json!({
        "/health": {"get": {"summary": "Liveness: the process is up", "responses": {"200": {"description": "alive"}}}},
        "/ready": {"get": {"summary": "Readiness: able to serve requests", "responses": {"200": {"description": "{\"status\": \"ready\"} or {\"status\": \"degraded\"} while the object store is unreachable (reads and WAL writes still served)"}, "503": {"description": "shutting down"}}}},
        "/metrics": {"get": {"summary": "Prometheus text exposition", "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}},
        "/api/v1/collections": {
            "get": {"summary": "List collections", "responses": responses(("200", ok("collections", "ListCollections")), &[])},
            "post": {"summary": "Create a collection", "requestBody": body("CreateCollection"),
                     "responses": responses(("201", ok("created", "CollectionInfo")), &[400, 409, 413, 415, 422])}
        },
        "/api/v1/collections/{name}": {
            "parameters": [name_param()],
            "get": {"summary": "Describe a collection", "responses": responses(("200", ok("collection", "CollectionInfo")), &[400, 404, 503])},
            "patch": {"summary": "Change a collection's settings (quantization); durable at once, a hot collection is converted in the background",
                      "requestBody": body("UpdateCollection"),
                      "responses": responses(("200", ok("collection", "CollectionInfo")), &[400, 404, 503])},
            "delete": {"summary": "Delete a collection and all its data", "responses": responses(("200", json!({"description": "deleted"})), &[400, 404])}
        },
        "/api/v1/collections/{name}/documents": {
            "parameters": [name_param()],
            "post": {"summary": "Upsert up to 10,000 documents; acknowledged after the WAL fsync",
                     "description": "The body is JSON, or an Arrow IPC stream (application/vnd.apache.arrow.stream) with columns id (utf8, nullable: a null gets a generated id), vector (fixed-size list of float32) and optionally metadata (utf8 JSON text, nullable), checked alike; errors name the column or the row as documents[i].",
                     "requestBody": {"required": true, "content": {
                         "application/json": {"schema": {"$ref": "#/components/schemas/UpsertRequest"}},
                         "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}}},
                     "responses": responses(("200", ok("upserted", "UpsertResponse")), &[400, 404, 413, 415, 422, 503])}
        },
        "/api/v1/collections/{name}/export": {
            "parameters": [name_param()],
            "get": {"summary": "Every live document as an Arrow IPC stream (id, vector, metadata as JSON text), in any tier; akidb export writes it as Parquet",
                    "responses": responses(("200", json!({"description": "an Arrow IPC stream", "content": {"application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}}})), &[400, 404, 503])}
        },
        "/api/v1/collections/{name}/documents/delete": {
            "parameters": [name_param()],
            "post": {"summary": "Delete documents by id, or every document matching a filter",
                     "description": "Exactly one of ids and filter. A delete by filter reads the matching ids, then deletes them in batches of 10,000 (each acknowledged after the WAL fsync): a document written meanwhile may be deleted if it matched when read.",
                     "requestBody": body("DeleteDocumentsRequest"),
                     "responses": responses(("200", ok("deleted", "DeleteDocumentsResponse")), &[400, 404, 413, 415, 422, 503])}
        },
        "/api/v1/collections/{name}/documents/scroll": {
            "parameters": [name_param()],
            "post": {"summary": "A page of the documents matching a filter, in id order",
                     "description": "Pages are in id order (UTF-8 bytes); pass next_cursor back as cursor for the next page. A scroll over a collection that changes meanwhile returns every document that exists throughout exactly once; documents added or deleted during it may or may not appear. Works in every tier (a warm or cold collection is read from local disk; a cold one is fetched there first).",
                     "requestBody": body("ScrollRequest"),
                     "responses": responses(("200", ok("a page", "ScrollResponse")), &[400, 404, 413, 415, 422, 503])}
        },
        "/api/v1/collections/{name}/indexes": {
            "parameters": [name_param()],
            "post": {"summary": "Create a payload index on a metadata field (201; 200 when it exists)",
                     "description": "keyword (strings), integer (integral numbers), float (any number), bool, text (full text). Declared in the collection's manifest and built from the documents when the collection is loaded (in RAM, never stored); a hot collection builds it at once, holding its writes and searches meanwhile. Filters on indexed fields are answered from the index: a search scans the matching documents exactly when that costs less than walking the graph with the filter (estimated from the exact match count), and count, scroll and delete by filter read only the matches. type text indexes strings for full-text search (BM25, through tantivy, in RAM; a search's text field), never filters.",
                     "requestBody": body("PayloadIndex"),
                     "responses": also_200(responses(("201", ok("created; the collection", "CollectionInfo")), &[400, 404, 413, 415, 422, 503]), ok("it existed already; the collection", "CollectionInfo"))}
        },
        "/api/v1/collections/{name}/count": {
            "parameters": [name_param()],
            "post": {"summary": "How many live documents match a filter (all without one), exactly",
                     "requestBody": body("CountRequest"),
                     "responses": responses(("200", ok("the count", "CountResponse")), &[400, 404, 413, 415, 422, 503])}
        },
        "/api/v1/collections/{name}/documents/{id}": {
            "parameters": [name_param(), id_param()],
            "get": {"summary": "Get a document", "responses": responses(("200", ok("document", "Document")), &[400, 404, 503])},
            "delete": {"summary": "Delete a document", "responses": responses(("200", ok("deleted", "DeleteDocumentsResponse")), &[400, 404, 503])}
        },
        "/api/v1/collections/{name}/tier": {
            "parameters": [name_param()],
            "get": {"summary": "Where the collection's data is: tier, pinned, bytes in RAM / on local disk / in the object store, last access, recent accesses",
                    "responses": responses(("200", ok("tier status", "TierStatus")), &[400, 404, 503])},
            "post": {"summary": "Move or pin: promote (default target hot), demote (default one tier down), pin (optionally moving to target first), unpin",
                     "requestBody": body("TierRequest"),
                     "responses": responses(("200", ok("tier status after the command", "TierStatus")), &[400, 404, 413, 415, 422, 503])}
        },
        "/api/v1/tiers": {"get": {"summary": "Collections and bytes per tier",
            "responses": {"200": {"description": "{\"hot\"|\"warm\"|\"cold\": {collections, bytes_in_ram, bytes_on_disk, bytes_in_object_store}}"}}}},
        "/api/v1/admin/dlq": {"get": {"summary": "The dead-letter queue: flushes that failed permanently, with their reasons (the data is safe in the WAL)",
            "responses": {"200": {"description": "{\"dead_letters\": [{collection_id, collection, operation, reason, attempts, failures, first_failed_ms, last_failed_ms}]}"}}}},
        "/api/v1/admin/dlq/retry": {"post": {"summary": "Re-drive every dead-lettered flush now",
            "responses": {"200": {"description": "{\"retried\": [...], \"still_failing\": [...]}"}}}},
        "/api/v1/admin/keys": {
            "get": {"summary": "List API keys (never the keys themselves)", "responses": responses(("200", ok("keys", "ListKeys")), &[])},
            "post": {"summary": "Create an API key; the answer holds the key, shown only this once", "requestBody": body("CreateKey"),
                     "responses": responses(("201", ok("created", "CreatedKey")), &[400, 413, 415, 422, 500])}
        },
        "/api/v1/admin/keys/{key_id}": {
            "parameters": [key_param()],
            "delete": {"summary": "Revoke an API key created through this API; it stops working at once",
                       "responses": responses(("200", json!({"description": "revoked"})), &[400, 404, 500])}
        },
        "/api/v1/collections/{name}/search": {
            "parameters": [name_param()],
            "post": {"summary": "k nearest neighbours", "requestBody": body("SearchRequest"),
                     "responses": responses(("200", ok("results, best first", "SearchResponse")), &body_errors.iter().copied().chain([404, 503]).collect::<Vec<_>>())}
        },
        "/api/v1/collections/{name}/search/batch": {
            "parameters": [name_param()],
            "post": {"summary": "Many searches in one request, answered in order",
                     "description": "Each element of searches is a SearchRequest, checked and run on its own (up to 8 at a time): a bad or failing search answers {\"error\": {...}} in its place (its field named from searches[i]) and the others are unaffected.",
                     "requestBody": body("BatchSearchRequest"),
                     "responses": responses(("200", ok("one answer per search, in order", "BatchSearchResponse")), &[400, 404, 413, 415, 422, 503])}
        }
    })
}

fn schemas() -> Value {
    json!({
                "Role": {"type": "string", "enum": ["read", "write", "admin"],
                         "description": "read: search and get; write: also upsert and delete documents; admin: everything"},
                "KeyLimits": {"type": "object", "additionalProperties": false, "description": "this key's quotas; absent ones take the server's [quota] defaults, 0 is unlimited", "properties": {
                    "requests_per_second": {"type": "integer", "minimum": 0}, "max_in_flight": {"type": "integer", "minimum": 0},
                    "max_collections": {"type": "integer", "minimum": 0}, "max_vectors": {"type": "integer", "minimum": 0}, "max_bytes": {"type": "integer", "minimum": 0}}},
                "CreateKey": {"type": "object", "required": ["role"], "additionalProperties": false, "properties": {
                    "role": {"$ref": "#/components/schemas/Role"},
                    "collections": {"type": "array", "minItems": 1, "maxItems": 256, "items": {"type": "string", "pattern": "^[A-Za-z0-9_*-]{1,128}$"},
                                    "description": "collection name patterns the key may touch (* matches any run of characters); absent: every collection"},
                    "limits": {"$ref": "#/components/schemas/KeyLimits"},
                    "description": {"type": "string", "maxLength": 1024}}},
                "CreatedKey": {"type": "object", "required": ["id", "key", "role"], "properties": {
                    "id": {"type": "string"}, "key": {"type": "string"}, "role": {"$ref": "#/components/schemas/Role"},
                    "collections": {"type": "array", "items": {"type": "string"}}, "limits": {"$ref": "#/components/schemas/KeyLimits"}}},
                "KeyInfo": {"type": "object", "required": ["id", "role", "source"], "properties": {
                    "id": {"type": "string"}, "role": {"$ref": "#/components/schemas/Role"},
                    "collections": {"type": "array", "items": {"type": "string"}}, "limits": {"$ref": "#/components/schemas/KeyLimits"},
                    "description": {"type": "string"}, "source": {"type": "string", "enum": ["api", "config", "bootstrap"]},
                    "created_at": {"type": "string", "format": "date-time"}}},
                "ListKeys": {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"$ref": "#/components/schemas/KeyInfo"}}}},
                "Metric": {"type": "string", "enum": ["cosine", "l2", "dot"],
                           "description": "cosine: score is cosine similarity, higher is better (vectors are stored unit length). dot: inner product, higher is better. l2: Euclidean distance, lower is better."},
                "Tier": {"type": "string", "enum": ["hot", "warm", "cold"],
                         "description": "hot: in RAM with its HNSW graph; warm: on local disk only; cold: in the object store only. Every tier answers every request."},
                "TierStatus": {"type": "object", "properties": {
                    "tier": {"$ref": "#/components/schemas/Tier"}, "pinned": {"type": "boolean"},
                    "bytes_in_ram": {"type": "integer"}, "bytes_on_disk": {"type": "integer"}, "bytes_in_object_store": {"type": "integer"},
                    "last_access": {"type": "string", "format": "date-time"}, "recent_accesses": {"type": "integer"},
                    "promoting": {"type": "boolean", "description": "a promotion to hot is loading the collection in the background; requests are answered meanwhile"}}},
                "TierRequest": {"type": "object", "required": ["action"], "additionalProperties": false, "properties": {
                    "action": {"type": "string", "enum": ["promote", "demote", "pin", "unpin"]},
                    "target": {"$ref": "#/components/schemas/Tier"}}},
                "IndexParams": {"type": "object", "additionalProperties": false, "properties": {
                    "m": {"type": "integer", "minimum": 2, "maximum": 128, "description": "HNSW links per node (default 16)"},
                    "ef_construction": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "build-time search breadth (default 200)"},
                    "ef_search": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "default query-time search breadth (default 64)"}}},
                "CreateCollection": {"type": "object", "required": ["name", "dimension", "metric"], "additionalProperties": false, "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"},
                    "dimension": {"type": "integer", "minimum": 1, "maximum": 4096},
                    "metric": {"$ref": "#/components/schemas/Metric"},
                    "index": {"$ref": "#/components/schemas/IndexParams"},
                    "quantization": {"$ref": "#/components/schemas/Quantization"}}},
                "Quantization": {"type": "string", "enum": ["none", "sq8"], "default": "none",
                    "description": "how the hot tier holds the vectors: none = f32 in RAM; sq8 = 8-bit codes in RAM (a quarter of the bytes) with f32 on local disk for re-ranking"},
                "UpdateCollection": {"type": "object", "additionalProperties": false, "properties": {
                    "quantization": {"$ref": "#/components/schemas/Quantization"}}},
                "CollectionInfo": {"type": "object", "required": ["name", "id", "dimension", "metric", "count", "index", "status"], "properties": {
                    "name": {"type": "string"}, "id": {"type": "string"}, "dimension": {"type": "integer"},
                    "metric": {"$ref": "#/components/schemas/Metric"}, "count": {"type": "integer"},
                    "index": {"type": "object", "properties": {"m": {"type": "integer"}, "ef_construction": {"type": "integer"}, "ef_search": {"type": "integer"}}},
                    "quantization": {"$ref": "#/components/schemas/Quantization"},
                    "payload_indexes": {"type": "array", "items": {"$ref": "#/components/schemas/PayloadIndex"}},
                    "status": {"type": "string", "enum": ["ready", "unavailable"]}, "reason": {"type": "string"},
                    "index_pending": {"type": "integer", "description": "vectors not yet in the HNSW graph (searched exactly meanwhile)"},
                    "segments": {"type": "integer"}, "unflushed": {"type": "integer"}, "bytes_in_ram": {"type": "integer"}}},
                "ListCollections": {"type": "object", "required": ["collections"], "properties": {"collections": {"type": "array", "items": {"$ref": "#/components/schemas/CollectionInfo"}}}},
                "DocumentIn": {"type": "object", "required": ["vector"], "additionalProperties": false, "properties": {
                    "id": {"type": "string", "maxLength": 128, "description": "UTF-8, at most 128 bytes; a UUIDv7 is generated when absent"},
                    "vector": {"type": "array", "items": {"type": "number"}},
                    "metadata": {"type": "object", "description": "at most 64 KiB as JSON"}}},
                "UpsertRequest": {"type": "object", "required": ["documents"], "additionalProperties": false, "properties": {
                    "documents": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {"$ref": "#/components/schemas/DocumentIn"}}}},
                "UpsertResponse": {"type": "object", "required": ["upserted", "ids"], "properties": {"upserted": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "string"}}}},
                "PayloadIndex": {"type": "object", "required": ["field", "type"], "additionalProperties": false, "properties": {
                    "field": {"type": "string", "maxLength": 256, "description": "a field path: names joined by dots"},
                    "type": {"type": "string", "enum": ["keyword", "integer", "float", "bool", "text"], "description": "text: full-text search (BM25) with a search's text; the others answer filters"}}},
                "Filter": {"type": "object", "description": "a filter over metadata (MongoDB semantics): keys are ANDed; a key is a field path (dots reach into nested objects) or $and/$or (arrays of filters) or $not (a filter); a field's condition is a value (equality) or an object of operators $eq, $ne, $gt, $gte, $lt, $lte (numbers or strings, compared within their kind), $in, $nin (arrays), $exists (boolean), $not (an operator object). A condition on an array holds when it holds for an element; a missing field matches $ne, $nin, $exists: false and equality with null. At most 64 conditions, 1024 values and 16 levels of nesting; errors name the clause (filter.$or[1].year.$gt)"},
                "DeleteDocumentsRequest": {"type": "object", "additionalProperties": false, "description": "exactly one of ids and filter", "properties": {
                    "ids": {"type": "array", "maxItems": 10000, "items": {"type": "string"}},
                    "filter": {"$ref": "#/components/schemas/Filter"}}},
                "ScrollRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "filter": {"$ref": "#/components/schemas/Filter"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100, "description": "at most 1000 with include_vector"},
                    "cursor": {"type": "string", "description": "the previous page's next_cursor"},
                    "include_vector": {"type": "boolean", "default": false},
                    "include_metadata": {"type": "boolean", "default": true}}},
                "ListedDocument": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"}, "vector": {"type": "array", "items": {"type": "number"}}, "metadata": {"type": ["object", "null"]}}},
                "ScrollResponse": {"type": "object", "required": ["documents", "next_cursor"], "properties": {
                    "documents": {"type": "array", "items": {"$ref": "#/components/schemas/ListedDocument"}},
                    "next_cursor": {"type": ["string", "null"], "description": "send as cursor for the next page; null on the last page"}}},
                "CountRequest": {"type": "object", "additionalProperties": false, "properties": {"filter": {"$ref": "#/components/schemas/Filter"}}},
                "CountResponse": {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}},
                "BatchSearchRequest": {"type": "object", "required": ["searches"], "additionalProperties": false, "properties": {
                    "searches": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/SearchRequest"}}}},
                "BatchSearchResponse": {"type": "object", "required": ["batches"], "properties": {
                    "batches": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/SearchResponse"}, {"$ref": "#/components/schemas/Error"}]}}}},
                "DeleteDocumentsResponse": {"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "integer"}}},
                "Document": {"type": "object", "required": ["id", "vector", "metadata"], "properties": {
                    "id": {"type": "string"}, "vector": {"type": "array", "items": {"type": "number"}}, "metadata": {"type": ["object", "null"]}}},
                "SearchRequest": {"type": "object", "anyOf": [{"required": ["vector"]}, {"required": ["text"]}], "additionalProperties": false,
                    "description": "A vector search, a full-text search (text, over a text payload index: hits ranked and scored by BM25), or both (hybrid: the two rankings, each read 4k deep and at least 40, fused by reciprocal rank fusion, score = (1 - text_weight)/(60 + vector rank) + text_weight/(60 + text rank); the scores are the fused ones). A text search of a warm or cold collection loads the whole collection (a cold one is fetched to local disk).",
                    "properties": {
                    "vector": {"type": "array", "items": {"type": "number"}, "description": "may be left out when text is given"},
                    "text": {"type": "string", "maxLength": 4096, "description": "full-text query (at most 4096 bytes): its words (lower-cased, English-stemmed) ORed, ranked by BM25"},
                    "text_field": {"type": "string", "description": "the text index's field; default the collection's only text index"},
                    "text_weight": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "description": "the text ranking's share of a hybrid search's fusion: 0 ranks by the vector alone, 1 by the text alone"},
                    "k": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10, "description": "at most 1000 with include_vector"},
                    "ef": {"type": "integer", "minimum": 1, "maximum": 10000},
                    "nprobe": {"type": "integer", "minimum": 1, "maximum": 65536, "description": "partitions a warm or cold query reads from a partitioned base; default 3% of them, at least 8"},
                    "filter": {"$ref": "#/components/schemas/Filter"},
                    "exact": {"type": "boolean", "default": false},
                    "include_vector": {"type": "boolean", "default": false},
                    "include_metadata": {"type": "boolean", "default": false},
                    "report": {"type": "boolean", "default": false, "description": "add a report: which tier answered and what it read"},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 300000, "description": "give up with 504 deadline_exceeded after this; default the server's limits.search_timeout (10 s)"}}},
                "SearchReport": {"type": "object", "required": ["tier", "bytes_local", "bytes_object_store", "object_store_gets", "partitions"], "properties": {
                    "tier": {"type": "string", "enum": ["hot", "warm", "cold", "unknown"]}, "bytes_local": {"type": "integer"}, "bytes_object_store": {"type": "integer"},
                    "object_store_gets": {"type": "integer"}, "partitions": {"type": "integer"}}},
                "SearchHit": {"type": "object", "required": ["id", "score"], "properties": {
                    "id": {"type": "string"}, "score": {"type": "number"}, "vector": {"type": "array", "items": {"type": "number"}}, "metadata": {"type": "object"}}},
                "SearchResponse": {"type": "object", "required": ["results", "latency_ms"], "properties": {
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/SearchHit"}}, "latency_ms": {"type": "number"},
                    "report": {"$ref": "#/components/schemas/SearchReport"}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": crate::ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()},
                    "message": {"type": "string"}, "field": {"type": "string"}}}}}
    })
}
