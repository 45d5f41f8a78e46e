//! `/api`: the OpenAPI document as a page people read — every operation with its
//! parameters, body and answers, then every schema — rendered on the server from the same
//! document `/api/v1/openapi.json` serves, with darkroom's own stylesheet (no CDN, no script).

use askama::Template;
use serde_json::Value;

struct Parameter {
    name: String,
    location: String,
    required: bool,
    description: String,
}

struct Answer {
    status: String,
    description: String,
    content: String,
}

struct Operation {
    method: String,
    path: String,
    anchor: String,
    summary: String,
    description: String,
    tag: String,
    parameters: Vec<Parameter>,
    body: String,
    answers: Vec<Answer>,
}

struct SchemaDoc {
    name: String,
    json: String,
}

#[derive(Template)]
#[template(path = "api.html")]
struct ApiPage {
    title: String,
    description: String,
    operations: Vec<Operation>,
    schemas: Vec<SchemaDoc>,
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// What a content map (`{"application/json": {"schema": …}}`) holds, in words.
fn content_words(content: &Value) -> String {
    let Some(map) = content.as_object() else { return String::new() };
    map.iter()
        .map(|(media_type, media)| {
            let schema = &media["schema"];
            let name = schema["$ref"]
                .as_str()
                .or_else(|| schema["items"]["$ref"].as_str())
                .map(|reference| reference.rsplit('/').next().unwrap_or(reference).to_owned());
            match name {
                Some(name) => format!("{media_type}: {name}"),
                None => media_type.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders the page from the OpenAPI document (JSON text).
pub fn render(document: &str) -> Result<String, String> {
    let doc: Value = serde_json::from_str(document).map_err(|error| error.to_string())?;
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "delete"] {
            let operation = &item[method];
            if operation.is_null() {
                continue;
            }
            let parameters = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|parameter| Parameter {
                    name: text(&parameter["name"]),
                    location: text(&parameter["in"]),
                    required: parameter["required"].as_bool().unwrap_or(false),
                    description: text(&parameter["description"]),
                })
                .collect();
            let answers = operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, answer)| Answer {
                    status: status.clone(),
                    description: text(&answer["description"]),
                    content: content_words(&answer["content"]),
                })
                .collect();
            let anchor = format!("{method}-{}", path.replace(['/', '{', '}', '.'], "-"));
            operations.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                anchor,
                summary: text(&operation["summary"]),
                description: text(&operation["description"]),
                tag: operation["tags"][0].as_str().unwrap_or("other").to_owned(),
                parameters,
                body: content_words(&operation["requestBody"]["content"]),
                answers,
            });
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| SchemaDoc {
            name: name.clone(),
            json: serde_json::to_string_pretty(schema).unwrap_or_default(),
        })
        .collect();
    let page = ApiPage {
        title: text(&doc["info"]["title"]),
        description: text(&doc["info"]["description"]),
        operations,
        schemas,
    };
    page.render().map_err(|error| error.to_string())
}
