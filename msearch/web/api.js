// The msearch REST API as the page uses it: JSON in and out, errors as ApiError, and a
// 401 answered by asking for the key once (the server turns it into a session cookie).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let askForKey = null;

/** Register what to do when the server wants its API key (resolves once unlocked). */
export function onKeyRequired(handler) {
  askForKey = handler;
}

export async function request(method, url, { json, form, params, prompt = true } = {}) {
  const query = params ? `?${new URLSearchParams(params)}` : "";
  for (let attempt = 0; ; attempt += 1) {
    const init = { method, headers: {}, credentials: "same-origin" };
    if (json !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form) {
      init.body = form;
    }
    let response;
    try {
      response = await fetch(url + query, init);
    } catch {
      throw new ApiError(0, "unreachable", "Cannot reach the msearch server.");
    }
    if (response.status === 401 && prompt && askForKey && attempt === 0) {
      await askForKey();
      continue;
    }
    const isJson = (response.headers.get("content-type") || "").startsWith("application/json");
    const body = isJson ? await response.json() : null;
    if (!response.ok) {
      const error = body && body.error ? body.error : {};
      throw new ApiError(response.status, error.code || "http_error",
                         error.message || `The server answered ${response.status}.`);
    }
    return body;
  }
}

export const api = {
  session: () => request("GET", "/api/v1/session"),
  openSession: (key) => request("POST", "/api/v1/session",
                                { json: { api_key: key }, prompt: false }),
  health: () => fetch("/health", { credentials: "same-origin" }).then((r) => r.json()),
  searchText: (body) => request("POST", "/api/v1/search/text", { json: body }),
  searchByFile: (body) => request("POST", "/api/v1/search/image", { json: body }),
  searchByUpload: (file, options) => {
    const form = new FormData();
    form.append("file", file, file.name || "pasted-image");
    for (const [key, value] of Object.entries(options)) {
      if (value !== undefined && value !== null && value !== "") {
        form.append(key, Array.isArray(value) ? value.join(",") : String(value));
      }
    }
    return request("POST", "/api/v1/search/image", { form });
  },
  file: (id) => request("GET", `/api/v1/files/${encodeURIComponent(id)}`),
  transcript: (id) => request("GET", `/api/v1/files/${encodeURIComponent(id)}/transcript`),
  files: (params) => request("GET", "/api/v1/files", { params }),
  folders: () => request("GET", "/api/v1/folders"),
  addFolder: (path, recursive) => request("POST", "/api/v1/folders", { json: { path, recursive } }),
  removeFolder: (id) => request("DELETE", `/api/v1/folders/${id}`),
  retryFiles: (fileIds) => request("POST", "/api/v1/files/retry",
                                   { json: fileIds ? { file_ids: fileIds } : undefined }),
  rescanFolder: (id) => request("POST", `/api/v1/folders/${id}/rescan`),
};
