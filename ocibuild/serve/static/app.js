// ocibuild playground: a form generated from the model's /openapi.json, talking to its Cog HTTP API on this
// origin. Plain JavaScript, no dependencies, nothing fetched from elsewhere.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null) node.append(child);
    }
    return node;
  };

  const HISTORY_LIMIT = 12;
  const KEEP_LIMIT = 200000; // characters of a value kept in history (bigger files are not kept)
  const PROGRESS_MS = 700;
  const state = {
    schema: null,
    fields: [],
    streaming: false,
    outputSchema: {},
    run: null,
    health: null,
    lang: "curl",
    historyKey: "ocibuild-playground:" + document.title,
  };

  // -- schema ------------------------------------------------------------------------------------------
  function resolveRef(ref) {
    if (typeof ref !== "string" || !ref.startsWith("#/")) return {};
    let node = state.schema;
    for (const part of ref.slice(2).split("/")) node = node && node[part];
    return node || {};
  }

  function flatten(prop) {
    // merge allOf/$ref (Cog puts choices in a referenced enum component)
    let merged = { ...prop };
    if (prop.$ref) merged = { ...resolveRef(prop.$ref), ...merged };
    for (const part of prop.allOf || []) merged = { ...flatten(part), ...merged };
    delete merged.allOf;
    delete merged.$ref;
    return merged;
  }

  function titleCase(name) {
    return name
      .split(/[_\s]+/)
      .filter(Boolean)
      .map((word) => word[0].toUpperCase() + word.slice(1))
      .join(" ");
  }

  function describe(name, raw, required) {
    const prop = flatten(raw);
    const spec = {
      name,
      prop,
      title: raw.title || titleCase(name),
      description: raw.description || (prop.description !== "An enumeration." ? prop.description : "") || "",
      required,
      nullable: !!prop.nullable,
      hasDefault: Object.prototype.hasOwnProperty.call(raw, "default"),
      def: raw.default,
      min: prop.minimum ?? prop.ge,
      max: prop.maximum ?? prop.le,
      type: prop.type,
    };
    if (Array.isArray(prop.enum)) spec.kind = "select";
    else if (prop.type === "boolean") spec.kind = "bool";
    else if (prop.type === "integer" || prop.type === "number") spec.kind = "number";
    else if (prop.type === "string" && (prop.format === "password" || prop["x-cog-secret"])) spec.kind = "secret";
    else if (prop.type === "string" && prop.format === "uri") spec.kind = "file";
    else if (prop.type === "string") spec.kind = "text";
    else if (prop.type === "array") {
      const items = flatten(prop.items || {});
      spec.items = items;
      if (items.type === "string" && items.format === "uri") spec.kind = "files";
      else if (["string", "integer", "number"].includes(items.type) && !items.enum) spec.kind = "list";
      else spec.kind = "json";
    } else spec.kind = "json";
    return spec;
  }

  function inputFields(schema) {
    const input = ((schema.components || {}).schemas || {}).Input || {};
    const required = new Set(input.required || []);
    const props = Object.entries(input.properties || {});
    props.sort((a, b) => (a[1]["x-order"] ?? 1e9) - (b[1]["x-order"] ?? 1e9));
    return props.map(([name, prop]) => describe(name, prop, required.has(name)));
  }

  // -- controls ----------------------------------------------------------------------------------------
  function typeLabel(spec) {
    const p = spec.prop;
    if (spec.kind === "select") return "choice";
    if (spec.kind === "file") return "file";
    if (spec.kind === "files") return "files";
    if (spec.kind === "secret") return "secret";
    if (spec.kind === "list") return `list of ${spec.items.type}`;
    return p.type || "json";
  }

  function describeLine(spec) {
    const parts = [];
    if (spec.description) parts.push(/[.!?:]$/.test(spec.description.trim()) ? spec.description.trim() : spec.description.trim() + ".");
    const p = spec.prop;
    if (spec.min !== undefined && spec.max !== undefined) parts.push(`Range ${spec.min} to ${spec.max}.`);
    else if (spec.min !== undefined) parts.push(`At least ${spec.min}.`);
    else if (spec.max !== undefined) parts.push(`At most ${spec.max}.`);
    if (p.minLength !== undefined) parts.push(`At least ${p.minLength} characters.`);
    if (p.maxLength !== undefined) parts.push(`At most ${p.maxLength} characters.`);
    if (p.pattern) parts.push(`Pattern ${p.pattern}.`);
    if (spec.hasDefault && spec.def !== null && spec.kind !== "secret") parts.push(`Default: ${JSON.stringify(spec.def)}.`);
    if (p["x-cog-accept"]) parts.push(`Accepts ${p["x-cog-accept"]}.`);
    if (p.deprecated) parts.push("Deprecated.");
    return parts.join(" ");
  }

  function buildField(spec) {
    const id = "in-" + spec.name;
    const descId = "desc-" + spec.name;
    const errId = "err-" + spec.name;
    const describedBy = `${descId} ${errId}`;
    const wrap = el("div", { class: "field", "data-name": spec.name, "data-kind": spec.kind });
    const label = el(
      "label",
      { for: id },
      spec.title,
      spec.required ? el("span", { class: "req", "aria-hidden": "true", text: "*" }) : null,
      spec.required ? el("span", { class: "sr-only", text: " (required)" }) : null,
      el("span", { class: "type", text: typeLabel(spec) }),
    );
    const common = { id, name: spec.name, "aria-describedby": describedBy, "aria-required": spec.required ? "true" : null };
    let control;
    switch (spec.kind) {
      case "select":
        control = selectControl(spec, common);
        break;
      case "bool":
        control = boolControl(spec, common, label);
        break;
      case "number":
        control = numberControl(spec, common);
        break;
      case "secret":
        control = secretControl(spec, common);
        break;
      case "file":
      case "files":
        control = fileControl(spec, common);
        break;
      case "list":
        control = listControl(spec, common);
        break;
      case "text":
        control = textControl(spec, common);
        break;
      default:
        control = jsonControl(spec, common);
    }
    if (spec.kind !== "bool") wrap.append(label);
    wrap.append(control.node);
    wrap.append(el("p", { class: "desc", id: descId, text: describeLine(spec) }));
    wrap.append(el("p", { class: "field-error", id: errId, hidden: true }));
    spec.control = control;
    spec.node = wrap;
    return wrap;
  }

  function selectControl(spec, common) {
    const select = el("select", common);
    const blank = !spec.hasDefault || spec.def === null;
    if (blank) select.append(el("option", { value: "", text: spec.required ? "Choose…" : "(none)" }));
    spec.prop.enum.forEach((value, index) => {
      select.append(el("option", { value: String(index), text: String(value) }));
    });
    const set = (value) => {
      const index = spec.prop.enum.findIndex((v) => v === value);
      select.value = index >= 0 ? String(index) : "";
    };
    set(spec.def);
    return {
      node: select,
      focus: () => select.focus(),
      read: () => (select.value === "" ? undefined : spec.prop.enum[Number(select.value)]),
      write: set,
    };
  }

  function boolControl(spec, common, label) {
    const input = el("input", { ...common, type: "checkbox", role: "switch" });
    input.checked = spec.def === true;
    const wrap = el("label", { class: "toggle", for: common.id }, input, ...label.childNodes);
    return {
      node: wrap,
      focus: () => input.focus(),
      read: () => input.checked,
      write: (value) => {
        input.checked = value === true;
      },
    };
  }

  function numberControl(spec, common) {
    const integer = spec.prop.type === "integer";
    const input = el("input", {
      ...common,
      type: "number",
      inputmode: integer ? "numeric" : "decimal",
      step: integer ? "1" : "any",
      min: spec.min,
      max: spec.max,
    });
    const row = el("div", { class: "row" }, input);
    let slider = null;
    if (spec.min !== undefined && spec.max !== undefined && spec.max > spec.min) {
      const step = integer ? Math.max(1, Math.round((spec.max - spec.min) / 1000)) : (spec.max - spec.min) / 100;
      slider = el("input", {
        type: "range",
        min: spec.min,
        max: spec.max,
        step,
        "aria-label": `${spec.title} slider`,
        tabindex: "-1",
      });
      slider.addEventListener("input", () => {
        input.value = integer ? String(Math.round(Number(slider.value))) : String(Number(Number(slider.value).toPrecision(6)));
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
      input.addEventListener("input", () => {
        if (input.value !== "") slider.value = input.value;
      });
      row.append(slider);
    }
    const write = (value) => {
      input.value = value === undefined || value === null ? "" : String(value);
      if (slider) slider.value = input.value === "" ? String(spec.min) : input.value;
    };
    write(spec.def);
    return {
      node: row,
      focus: () => input.focus(),
      read: () => {
        if (input.value.trim() === "") {
          if (input.validity && input.validity.badInput) throw new Error("Enter a number.");
          return undefined;
        }
        const value = Number(input.value);
        if (!Number.isFinite(value)) throw new Error("Enter a number.");
        return value;
      },
      write,
    };
  }

  function secretControl(spec, common) {
    const input = el("input", { ...common, type: "password", autocomplete: "off", spellcheck: "false" });
    const toggle = el("button", { type: "button", class: "small", "aria-pressed": "false", "aria-controls": common.id, text: "Show" });
    toggle.addEventListener("click", () => {
      const shown = input.type === "text";
      input.type = shown ? "password" : "text";
      toggle.textContent = shown ? "Show" : "Hide";
      toggle.setAttribute("aria-pressed", String(!shown));
    });
    return {
      node: el("div", { class: "row" }, input, toggle),
      focus: () => input.focus(),
      read: () => (input.value === "" ? undefined : input.value),
      write: (value) => {
        input.value = typeof value === "string" ? value : "";
      },
      secret: true,
    };
  }

  function textControl(spec, common) {
    const p = spec.prop;
    const short = p.pattern || (p.maxLength !== undefined && p.maxLength <= 80);
    const input = short
      ? el("input", { ...common, type: "text", spellcheck: "false" })
      : el("textarea", { ...common, rows: 3 });
    if (!short) {
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          $("form").requestSubmit();
        }
      });
    }
    const write = (value) => {
      input.value = value === undefined || value === null ? "" : String(value);
    };
    write(spec.def);
    return {
      node: input,
      focus: () => input.focus(),
      read: () => (input.value === "" ? undefined : input.value),
      write,
    };
  }

  function jsonControl(spec, common) {
    const input = el("textarea", { ...common, rows: 3, class: "mono", spellcheck: "false", placeholder: "JSON" });
    const write = (value) => {
      input.value = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
    };
    write(spec.def);
    return {
      node: input,
      focus: () => input.focus(),
      read: () => {
        if (input.value.trim() === "") return undefined;
        try {
          return JSON.parse(input.value);
        } catch (error) {
          const anyString = (spec.prop.anyOf || []).some((option) => flatten(option).type === "string");
          if (anyString) return input.value;
          throw new Error("Not valid JSON: " + error.message);
        }
      },
      write,
    };
  }

  function listControl(spec, common) {
    const itemType = spec.items.type;
    const list = el("ul", { class: "list-items", id: common.id + "-items" });
    const add = el("button", { type: "button", class: "small", id: common.id, "aria-describedby": common["aria-describedby"], text: "Add item" });
    const addRow = (value) => {
      const index = list.children.length + 1;
      const input = el("input", {
        type: itemType === "string" ? "text" : "number",
        step: itemType === "integer" ? "1" : "any",
        "aria-label": `${spec.title} item ${index}`,
      });
      input.value = value === undefined || value === null ? "" : String(value);
      const remove = el("button", { type: "button", class: "small", "aria-label": `Remove ${spec.title} item ${index}`, text: "Remove" });
      const row = el("li", { class: "row" }, input, remove);
      remove.addEventListener("click", () => {
        row.remove();
        add.focus();
        notifyChange();
      });
      list.append(row);
      return input;
    };
    add.addEventListener("click", () => {
      addRow().focus();
    });
    const write = (value) => {
      list.replaceChildren();
      if (Array.isArray(value)) value.forEach((item) => addRow(item));
    };
    write(spec.def);
    return {
      node: el("div", {}, list, add),
      focus: () => (list.querySelector("input") || add).focus(),
      read: () => {
        const inputs = [...list.querySelectorAll("input")];
        if (inputs.length === 0) return spec.required ? [] : undefined;
        return inputs.map((input, index) => {
          if (itemType === "string") return input.value;
          const value = Number(input.value);
          if (input.value.trim() === "" || !Number.isFinite(value)) throw new Error(`Item ${index + 1} is not a number.`);
          return value;
        });
      },
      write,
    };
  }

  function fileControl(spec, common) {
    const multiple = spec.kind === "files";
    const accept = spec.kind === "files" ? spec.items["x-cog-accept"] : spec.prop["x-cog-accept"];
    const picker = el("input", { ...common, type: "file", multiple, accept });
    const url = el("input", { type: "url", placeholder: "or paste a URL (https://…)", "aria-label": `${spec.title} URL`, spellcheck: "false" });
    const preview = el("div", { class: "preview", "aria-live": "polite" });
    const hint = el("span", { class: "muted", text: multiple ? "Drop files here or choose them." : "Drop a file here or choose one." });
    const drop = el("div", { class: "drop" }, hint, picker, url, preview);
    let files = []; // [{name, type, size, dataUrl}]
    const read = (file) =>
      new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve({ name: file.name, type: file.type, size: file.size, dataUrl: reader.result });
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(file);
      });
    const show = () => {
      preview.replaceChildren(...files.map((f) => previewOf(f)));
    };
    const take = async (list) => {
      const chosen = [...list].slice(0, multiple ? 64 : 1);
      files = await Promise.all(chosen.map(read));
      if (files.length) url.value = "";
      show();
      notifyChange();
    };
    picker.addEventListener("change", () => take(picker.files));
    url.addEventListener("input", () => {
      if (url.value) {
        files = [];
        picker.value = "";
        show();
      }
    });
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (event) => {
        event.preventDefault();
        drop.classList.add("over");
      });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length) take(event.dataTransfer.files);
    });
    const write = (value, names) => {
      files = [];
      url.value = "";
      picker.value = "";
      const values = value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];
      for (const item of values) {
        if (typeof item !== "string") continue;
        const name = (names && names[files.length]) || `file${files.length + 1}`;
        if (item.startsWith("data:")) files.push({ name, type: mimeOf(item), size: 0, dataUrl: item });
        else url.value = item;
      }
      show();
    };
    write(spec.def);
    return {
      node: drop,
      focus: () => picker.focus(),
      pending: () => picker.files && picker.files.length > 0 && files.length === 0 ? take(picker.files) : null,
      read: () => {
        const values = files.map((f) => f.dataUrl);
        if (url.value.trim()) values.push(url.value.trim());
        if (values.length === 0) return undefined;
        return multiple ? values : values[0];
      },
      names: () => files.map((f) => f.name),
      write,
    };
  }

  function previewOf(file) {
    const kind = (file.type || mimeOf(file.dataUrl) || "").split("/")[0];
    const label = `${file.name}${file.size ? ` (${formatBytes(file.size)})` : ""}`;
    let media = null;
    if (kind === "image") media = el("img", { src: file.dataUrl, alt: `Preview of ${file.name}` });
    else if (kind === "audio") media = el("audio", { src: file.dataUrl, controls: true });
    else if (kind === "video") media = el("video", { src: file.dataUrl, controls: true, muted: true });
    return el("div", { class: "preview-item" }, media, el("div", { class: "file-name", text: label }));
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  // -- the form ----------------------------------------------------------------------------------------
  function buildForm() {
    const box = $("fields");
    box.replaceChildren();
    state.fields = inputFields(state.schema);
    if (state.fields.length === 0) box.append(el("p", { class: "muted", text: "This model takes no inputs." }));
    for (const spec of state.fields) box.append(buildField(spec));
    const post = ((state.schema.paths || {})["/predictions"] || {}).post || {};
    state.streaming = !!post["x-cog-streaming"];
    state.outputSchema = flatten(((state.schema.components || {}).schemas || {}).Output || {});
    updateSnippet();
  }

  function collect(strict) {
    const input = {};
    let ok = true;
    for (const spec of state.fields) {
      try {
        const value = spec.control.read();
        if (value !== undefined) input[spec.name] = value;
      } catch (error) {
        ok = false;
        if (strict) fieldError(spec.name, error.message);
      }
    }
    if (strict && !ok) throw new Error("invalid");
    return input;
  }

  function fieldError(name, message) {
    const spec = state.fields.find((s) => s.name === name);
    if (!spec) return false;
    const err = $("err-" + name);
    err.textContent = message;
    err.hidden = false;
    spec.node.classList.add("invalid");
    const control = document.getElementById("in-" + name);
    if (control) control.setAttribute("aria-invalid", "true");
    return true;
  }

  function clearErrors() {
    for (const spec of state.fields) {
      const err = $("err-" + spec.name);
      err.hidden = true;
      err.textContent = "";
      spec.node.classList.remove("invalid");
      const control = document.getElementById("in-" + spec.name);
      if (control) control.removeAttribute("aria-invalid");
    }
    formError("");
  }

  function formError(message) {
    const box = $("form-error");
    box.textContent = message;
    box.hidden = !message;
  }

  function focusFirstError() {
    const spec = state.fields.find((s) => s.node.classList.contains("invalid"));
    if (spec) spec.control.focus();
  }

  function notifyChange() {
    clearTimeout(notifyChange.timer);
    notifyChange.timer = setTimeout(updateSnippet, 150);
  }

  // -- running -----------------------------------------------------------------------------------------
  function newId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return "pg_" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function submit(event) {
    if (event) event.preventDefault();
    if (state.run || !state.schema) return;
    clearErrors();
    await Promise.all(state.fields.map((spec) => spec.control.pending && spec.control.pending()));
    let input;
    try {
      input = collect(true);
    } catch (_) {
      focusFirstError();
      return;
    }
    const run = { id: newId(), input, controller: new AbortController(), started: performance.now(), chunks: [], logs: "", metrics: {} };
    state.run = run;
    setRunning(true);
    resetOutput();
    setStatus("starting", "Starting…");
    let final = null;
    try {
      final = state.streaming ? await runStreaming(run) : await runSync(run);
    } catch (error) {
      if (error.name !== "AbortError") {
        setStatus("failed", "Request failed: " + error.message);
        formError("The request failed: " + error.message);
      }
    } finally {
      state.run = null;
      setRunning(false);
    }
    if (final) finish(run, final);
  }

  async function runSync(run) {
    const progress = setInterval(() => pollProgress(run), PROGRESS_MS);
    try {
      const response = await fetch("/predictions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id: run.id, input: run.input }),
        signal: run.controller.signal,
      });
      return await handleAnswer(response);
    } finally {
      clearInterval(progress);
    }
  }

  // While a sync prediction runs, PUT /predictions/{id} answers 202 with its state (logs so far). The input sent
  // is not an object, so this can never start a prediction: once it has finished the answer is a 422.
  async function pollProgress(run) {
    if (run.polling || state.run !== run) return;
    run.polling = true;
    try {
      const response = await fetch("/predictions/" + encodeURIComponent(run.id), {
        method: "PUT",
        headers: { "Content-Type": "application/json", Prefer: "respond-async" },
        body: JSON.stringify({ id: run.id, input: "progress" }),
      });
      if (response.status === 202 && state.run === run) {
        const snapshot = await response.json();
        if (snapshot.status) setStatus(snapshot.status, statusText(snapshot.status, run));
        if (typeof snapshot.logs === "string") setLogs(snapshot.logs);
        if (snapshot.metrics) showMetrics(snapshot.metrics);
      }
    } catch (_) {
      /* progress is best effort */
    } finally {
      run.polling = false;
    }
  }

  async function handleAnswer(response) {
    let body = null;
    const text = await response.text();
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = text;
    }
    if (response.status === 422 && body && Array.isArray(body.detail)) {
      showValidation(body.detail);
      setStatus("failed", "The model rejected the input.");
      showRaw(body);
      return null;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error : typeof body === "string" && body ? body : response.statusText;
      setStatus("failed", `HTTP ${response.status}: ${message}`);
      formError(`The model answered HTTP ${response.status}: ${message}`);
      showRaw(body);
      return null;
    }
    return body;
  }

  function showValidation(details) {
    const general = [];
    for (const detail of details) {
      const loc = (detail.loc || []).filter((part) => part !== "body" && part !== "input");
      const name = loc[0];
      if (name === undefined || !fieldError(String(name), detail.msg || "Invalid value")) general.push(`${loc.join(".") || "input"}: ${detail.msg}`);
    }
    if (general.length) formError(general.join("\n"));
    focusFirstError();
  }

  async function runStreaming(run) {
    const response = await fetch("/predictions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ id: run.id, input: run.input }),
      signal: run.controller.signal,
    });
    if (!(response.headers.get("content-type") || "").includes("text/event-stream")) return handleAnswer(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let final = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const event = parseEvent(block);
        if (!event) continue;
        const result = onEvent(run, event.name, event.data);
        if (result) final = result;
      }
    }
    if (!final) throw new Error("the event stream ended before the prediction completed");
    return final;
  }

  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":") || line === "") continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0) return null;
    try {
      return { name, data: JSON.parse(data.join("\n")) };
    } catch (_) {
      return { name, data: data.join("\n") };
    }
  }

  function onEvent(run, name, data) {
    switch (name) {
      case "start":
        setStatus(data.status || "processing", statusText(data.status || "processing", run));
        return null;
      case "output":
        run.chunks.push(data.chunk);
        renderChunk(data.chunk, run.chunks.length - 1);
        return null;
      case "log":
        run.logs += data.data || "";
        setLogs(run.logs);
        return null;
      case "metric":
        applyMetric(run.metrics, data);
        showMetrics(run.metrics);
        return null;
      case "completed":
        return data;
      case "error":
        formError("Stream error: " + (data.error || JSON.stringify(data)));
        return null;
      default:
        return null;
    }
  }

  function applyMetric(metrics, data) {
    if (data.mode === "incr") metrics[data.name] = (metrics[data.name] || 0) + data.value;
    else if (data.mode === "append") metrics[data.name] = [...(metrics[data.name] || []), data.value];
    else metrics[data.name] = data.value;
  }

  async function cancel() {
    const run = state.run;
    if (!run) return;
    $("cancel").disabled = true;
    setStatus("processing", "Canceling…");
    try {
      const response = await fetch(`/predictions/${encodeURIComponent(run.id)}/cancel`, { method: "POST" });
      if (response.status === 404 && state.run === run) {
        run.controller.abort(); // not (yet) known to the model: stop waiting for it
        setStatus("canceled", "Canceled.");
      }
    } catch (error) {
      formError("Cancel failed: " + error.message);
    }
  }

  function finish(run, body) {
    const status = body.status || "succeeded";
    setStatus(status, statusText(status, run, body));
    if (status === "failed" && body.error) formError(body.error);
    if (body.logs !== undefined) setLogs(body.logs || "");
    if (body.metrics) showMetrics(body.metrics);
    if (body.output !== undefined && body.output !== null) renderOutput(body.output, $("output"));
    else if (!run.chunks.length) $("output").replaceChildren(el("p", { class: "muted", text: status === "succeeded" ? "(no output)" : "" }));
    showRaw(body);
    remember(run, body);
  }

  function statusText(status, run, body) {
    const seconds = body && body.metrics && typeof body.metrics.predict_time === "number" ? body.metrics.predict_time : (performance.now() - run.started) / 1000;
    const names = { starting: "Starting…", processing: "Running…", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled" };
    const text = names[status] || status;
    const took = seconds < 1 ? `${Math.max(1, Math.round(seconds * 1000))} ms` : `${seconds.toFixed(2)} s`;
    return status === "starting" || status === "processing" ? text : `${text} in ${took}.`;
  }

  // -- output rendering ----------------------------------------------------------------------------------
  function resetOutput() {
    $("output").replaceChildren();
    $("output").setAttribute("aria-busy", "true");
    $("metrics").replaceChildren();
    setLogs("");
    $("raw").textContent = "";
    formError("");
  }

  function concatenates() {
    const o = state.outputSchema;
    return o.type === "array" && o["x-cog-array-display"] === "concatenate";
  }

  function renderChunk(chunk, index) {
    const box = $("output");
    if (concatenates()) {
      let text = box.querySelector(".text.stream");
      if (!text) {
        text = el("p", { class: "text stream" });
        box.replaceChildren(text);
      }
      text.append(document.createTextNode(String(chunk)));
      return;
    }
    box.append(el("div", { class: "item", "data-index": index }, renderValue(chunk, index)));
  }

  function renderOutput(output, box) {
    box.setAttribute("aria-busy", "false");
    box.replaceChildren();
    if (Array.isArray(output) && concatenates()) {
      box.append(el("p", { class: "text stream" }, output.map(String).join("")));
      return;
    }
    if (Array.isArray(output) && output.length && output.every((v) => typeof v === "string" || isPlainScalar(v))) {
      output.forEach((item, index) => box.append(el("div", { class: "item", "data-index": index }, renderValue(item, index))));
      return;
    }
    box.append(renderValue(output, 0));
  }

  function isPlainScalar(value) {
    return value === null || ["number", "boolean"].includes(typeof value);
  }

  function isFileUrl(value) {
    return typeof value === "string" && (value.startsWith("data:") || /^https?:\/\/\S+$/.test(value));
  }

  function mimeOf(url) {
    if (typeof url !== "string") return "";
    if (url.startsWith("data:")) return url.slice(5).split(/[;,]/)[0] || "application/octet-stream";
    const ext = (url.split(/[?#]/)[0].match(/\.([a-z0-9]+)$/i) || [])[1] || "";
    const types = {
      png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", svg: "image/svg+xml",
      bmp: "image/bmp", wav: "audio/wav", mp3: "audio/mpeg", ogg: "audio/ogg", flac: "audio/flac", m4a: "audio/mp4",
      mp4: "video/mp4", webm: "video/webm", mov: "video/quicktime", txt: "text/plain", json: "application/json",
    };
    return types[ext.toLowerCase()] || "";
  }

  function extensionOf(mime) {
    const table = {
      "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "image/svg+xml": "svg",
      "audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/flac": "flac",
      "video/mp4": "mp4", "video/webm": "webm", "text/plain": "txt", "application/json": "json",
    };
    return table[mime] || (mime.split("/")[1] || "bin").replace(/[^a-z0-9]/gi, "");
  }

  function decodeText(dataUrl) {
    const [head, payload = ""] = dataUrl.split(",", 2);
    try {
      if (head.includes(";base64")) {
        const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
        return new TextDecoder().decode(bytes);
      }
      return decodeURIComponent(payload);
    } catch (_) {
      return null;
    }
  }

  function renderValue(value, index) {
    if (typeof value === "string" && isFileUrl(value)) return renderFile(value, index);
    if (typeof value === "string") return el("p", { class: "text" }, value);
    return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
  }

  function renderFile(url, index) {
    const mime = mimeOf(url);
    const kind = mime.split("/")[0];
    const name = url.startsWith("data:") ? `output${index ? "-" + index : ""}.${extensionOf(mime)}` : url.split(/[?#]/)[0].split("/").pop() || "output";
    const wrap = el("figure", { class: "file", "data-mime": mime });
    if (kind === "image") wrap.append(el("img", { src: url, alt: `Output image ${index + 1}` }));
    else if (kind === "audio") wrap.append(el("audio", { src: url, controls: true }));
    else if (kind === "video") wrap.append(el("video", { src: url, controls: true }));
    else if (url.startsWith("data:") && (kind === "text" || mime === "application/json")) {
      const text = decodeText(url);
      if (text !== null) wrap.append(el("pre", { class: "json" }, text.length > 100000 ? text.slice(0, 100000) + "\n…" : text));
    }
    wrap.append(el("a", { class: "download", href: url, download: name, target: url.startsWith("data:") ? null : "_blank", rel: "noopener" }, `Download ${name}`));
    return wrap;
  }

  function setLogs(text) {
    $("logs").textContent = text;
    if (text) $("logs-box").open = true;
  }

  function showMetrics(metrics) {
    const entries = Object.entries(metrics || {});
    const box = $("metrics");
    if (!entries.length) {
      box.replaceChildren();
      return;
    }
    const dl = el("dl");
    for (const [key, value] of entries) {
      const shown = key === "predict_time" && typeof value === "number" ? `${value.toFixed(3)} s` : typeof value === "object" ? JSON.stringify(value) : String(value);
      dl.append(el("dt", { text: key }), el("dd", { text: shown }));
    }
    box.replaceChildren(el("span", { class: "sr-only", text: "Metrics" }), dl);
  }

  function showRaw(body) {
    const shorten = (key, value) => (typeof value === "string" && value.startsWith("data:") && value.length > 200 ? value.slice(0, 120) + `… (${value.length} characters)` : value);
    $("raw").textContent = typeof body === "string" ? body : JSON.stringify(body, shorten, 2);
  }

  function setStatus(status, text) {
    const node = $("status");
    node.dataset.state = status;
    node.textContent = text;
  }

  function setRunning(running) {
    $("run").disabled = running;
    $("cancel").disabled = !running;
    $("output").setAttribute("aria-busy", String(running));
    if (running) $("run").textContent = "Running…";
    else $("run").textContent = "Run";
  }

  // -- history -----------------------------------------------------------------------------------------
  function loadHistory() {
    try {
      const items = JSON.parse(localStorage.getItem(state.historyKey) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (_) {
      return [];
    }
  }

  function saveHistory(items) {
    for (let keep = items.length; keep >= 0; keep--) {
      try {
        localStorage.setItem(state.historyKey, JSON.stringify(items.slice(0, keep)));
        return;
      } catch (_) {
        /* over quota: keep fewer */
      }
    }
  }

  function keepable(value) {
    const text = JSON.stringify(value);
    return text === undefined || text.length <= KEEP_LIMIT ? value : "(too large to keep)";
  }

  function scrub(value, secrets) {
    // secrets never go to localStorage, not even echoed back in an output or error
    if (!secrets.length || value === null || value === undefined) return value;
    let text = JSON.stringify(value);
    for (const secret of secrets) text = text.split(JSON.stringify(secret).slice(1, -1)).join("**********");
    return JSON.parse(text);
  }

  function remember(run, body) {
    const input = {};
    const secrets = [];
    const files = {};
    for (const spec of state.fields) {
      if (!(spec.name in run.input)) continue;
      if (spec.control.names) files[spec.name] = spec.control.names();
      if (spec.control.secret) {
        if (typeof run.input[spec.name] === "string" && run.input[spec.name]) secrets.push(run.input[spec.name]);
        continue;
      }
      input[spec.name] = keepable(run.input[spec.name]);
    }
    const entry = {
      id: run.id,
      at: Date.now(),
      status: body.status,
      input,
      files,
      output: scrub(keepable(body.output === undefined ? null : body.output), secrets),
      error: scrub(body.error || null, secrets),
      metrics: body.metrics || {},
    };
    const items = [entry, ...loadHistory().filter((item) => item.id !== run.id)].slice(0, HISTORY_LIMIT);
    saveHistory(items);
    renderHistory();
  }

  function summary(input) {
    return Object.entries(input)
      .map(([k, v]) => `${k}=${typeof v === "string" ? (v.startsWith("data:") ? "(file)" : v) : JSON.stringify(v)}`)
      .join(", ");
  }

  function renderHistory() {
    const items = loadHistory();
    const list = $("history");
    list.replaceChildren(
      ...items.map((item) => {
        const when = new Date(item.at).toLocaleTimeString();
        const button = el(
          "button",
          { type: "button", "data-status": item.status, "aria-label": `Restore run from ${when}, ${item.status}: ${summary(item.input)}` },
          el("span", { class: "when", text: `${when} · ${item.status}` }),
          el("span", { class: "what", text: summary(item.input) || "(no inputs)" }),
        );
        button.addEventListener("click", () => restore(item));
        return el("li", {}, button);
      }),
    );
    $("history-empty").hidden = items.length > 0;
    $("clear-history").hidden = items.length === 0;
  }

  function restore(item) {
    if (state.run) return;
    clearErrors();
    for (const spec of state.fields) {
      if (spec.control.secret) continue;
      const value = item.input[spec.name];
      const names = (item.files || {})[spec.name];
      spec.control.write(value === "(too large to keep)" ? undefined : value === undefined ? spec.def : value, names);
    }
    resetOutput();
    $("output").setAttribute("aria-busy", "false");
    setStatus(item.status, `${item.status} (from history, ${new Date(item.at).toLocaleString()})`);
    if (item.error) formError(item.error);
    if (item.output !== null && item.output !== "(too large to keep)") renderOutput(item.output, $("output"));
    showMetrics(item.metrics);
    updateSnippet();
    const first = state.fields[0];
    if (first) first.control.focus();
  }

  // -- snippets ----------------------------------------------------------------------------------------
  function snippetInputs() {
    let input = {};
    try {
      input = collect(false);
    } catch (_) {
      input = {};
    }
    const files = {};
    const secrets = {};
    for (const spec of state.fields) {
      if (!(spec.name in input)) continue;
      if (spec.control.secret) secrets[spec.name] = spec.name.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
      else if (spec.control.names) {
        const names = spec.control.names();
        const value = input[spec.name];
        const values = Array.isArray(value) ? value : [value];
        const placeholders = values.map((v, i) => (typeof v === "string" && v.startsWith("data:") ? names[i] || `file${i}` : null));
        if (placeholders.some(Boolean)) files[spec.name] = placeholders;
      }
    }
    return { input, files, secrets };
  }

  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function curlSnippet() {
    const { input, files, secrets } = snippetInputs();
    const base = location.origin;
    const marker = (key) => `\u0000${key}\u0000`;
    const shown = {};
    const subst = {};
    for (const [name, value] of Object.entries(input)) {
      if (secrets[name]) {
        shown[name] = marker(name);
        subst[name] = `"'"$${secrets[name]}"'"`;
      } else if (files[name]) {
        const values = Array.isArray(value) ? value : [value];
        const parts = values.map((v, i) => {
          const file = files[name][i];
          if (!file) return JSON.stringify(v);
          return `"data:${mimeOf(v)};base64,'"$(base64 -w0 ${shellQuote(file)})"'"`;
        });
        shown[name] = marker(name);
        subst[name] = Array.isArray(value) ? `[${parts.join(", ")}]` : parts[0];
      } else shown[name] = value;
    }
    let body = JSON.stringify({ input: shown }, null, 2);
    body = body.replace(/'/g, "'\\''");
    for (const [name, replacement] of Object.entries(subst)) body = body.replace(JSON.stringify(marker(name)), replacement);
    const lines = [];
    for (const variable of Object.values(secrets)) lines.push(`# export ${variable}=...   (the secret input)`);
    const stream = state.streaming;
    lines.push(`curl -s${stream ? "N" : ""} ${base}/predictions \\`);
    lines.push(`  -H 'Content-Type: application/json' \\`);
    if (stream) lines.push(`  -H 'Accept: text/event-stream' \\`);
    lines.push(`  -d '${body}'`);
    lines.push("");
    lines.push("# add -H 'Prefer: respond-async' (and a \"webhook\") to get 202 at once; cancel with:");
    lines.push(`# curl -s -X POST ${base}/predictions/PREDICTION_ID/cancel`);
    return lines.join("\n");
  }

  function pyLiteral(value, indent = "") {
    if (value === null || value === undefined) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (typeof value === "number" || typeof value === "string") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map((v) => pyLiteral(v, indent)).join(", ") + "]";
    const inner = indent + "    ";
    const entries = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pyLiteral(v, inner)},`);
    return entries.length ? "{\n" + entries.join("\n") + "\n" + indent + "}" : "{}";
  }

  function pythonSnippet() {
    const { input, files, secrets } = snippetInputs();
    const lines = [];
    const needFiles = Object.keys(files).length > 0;
    if (needFiles) lines.push("import base64");
    if (state.streaming) lines.push("import json");
    if (needFiles) lines.push("import mimetypes");
    if (Object.keys(secrets).length) lines.push("import os");
    if (lines.length) lines.push("");
    lines.push("import requests", "");
    if (needFiles) {
      lines.push(
        "",
        "def data_url(path):",
        '    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"',
        '    with open(path, "rb") as f:',
        '        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()',
        "",
        "",
      );
    }
    const entries = Object.entries(input).map(([name, value]) => {
      let shown;
      if (secrets[name]) shown = `os.environ[${JSON.stringify(secrets[name])}]`;
      else if (files[name]) {
        const values = Array.isArray(value) ? value : [value];
        const parts = values.map((v, i) => (files[name][i] ? `data_url(${JSON.stringify(files[name][i])})` : pyLiteral(v)));
        shown = Array.isArray(value) ? `[${parts.join(", ")}]` : parts[0];
      } else shown = pyLiteral(value, "    ");
      return `    ${JSON.stringify(name)}: ${shown},`;
    });
    lines.push(entries.length ? `inputs = {\n${entries.join("\n")}\n}` : "inputs = {}");
    const url = `${location.origin}/predictions`;
    if (state.streaming) {
      lines.push(
        "headers = {\"Accept\": \"text/event-stream\"}",
        `with requests.post(${JSON.stringify(url)}, json={"input": inputs}, headers=headers, stream=True) as r:`,
        "    r.raise_for_status()",
        "    event = None",
        "    for line in r.iter_lines(decode_unicode=True):",
        '        if line.startswith("event:"):',
        "            event = line[6:].strip()",
        '        elif line.startswith("data:") and event == "output":',
        '            print(json.loads(line[5:])["chunk"], end="", flush=True)',
      );
    } else {
      lines.push(
        `r = requests.post(${JSON.stringify(url)}, json={"input": inputs})`,
        "r.raise_for_status()",
        "prediction = r.json()",
        'print(prediction["status"], prediction.get("output"))',
      );
    }
    return lines.join("\n").replace(/^\n+/, "");
  }

  function updateSnippet() {
    if (!state.schema) return;
    $("snippet").textContent = state.lang === "curl" ? curlSnippet() : pythonSnippet();
  }

  function selectTab(lang, focus) {
    state.lang = lang;
    for (const [id, value] of [["tab-curl", "curl"], ["tab-python", "python"]]) {
      const tab = $(id);
      tab.setAttribute("aria-selected", String(value === lang));
      tab.tabIndex = value === lang ? 0 : -1;
      if (focus && value === lang) tab.focus();
    }
    updateSnippet();
  }

  async function copySnippet() {
    const text = $("snippet").textContent;
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (_) {
      const area = el("textarea", { class: "sr-only" });
      area.value = text;
      document.body.append(area);
      area.select();
      try {
        copied = document.execCommand("copy");
      } catch (__) {
        copied = false;
      }
      area.remove();
    }
    $("copy").textContent = copied ? "Copied" : "Select and copy";
    setTimeout(() => {
      $("copy").textContent = "Copy";
    }, 1500);
  }

  // -- health ------------------------------------------------------------------------------------------
  async function pollHealth() {
    let status = "UNREACHABLE";
    let body = null;
    try {
      const response = await fetch("/health-check", { cache: "no-store" });
      body = await response.json();
      status = response.ok ? body.status || "UNKNOWN" : "UNREACHABLE"; // 502: the container's server is not up yet
    } catch (_) {
      status = "UNREACHABLE";
    }
    const badge = $("health");
    const names = {
      READY: "ready",
      BUSY: "busy",
      STARTING: "setting up…",
      SETUP_FAILED: "setup failed",
      DEFUNCT: "worker exited",
      UNHEALTHY: "unhealthy",
      UNREACHABLE: "starting the container…",
    };
    badge.dataset.state = status;
    badge.textContent = names[status] || status.toLowerCase();
    if (status === "SETUP_FAILED" && body && body.setup && state.health !== status) {
      formError("Model setup failed:\n" + (body.setup.logs || "").trim().split("\n").slice(-12).join("\n"));
    }
    state.health = status;
    const again = status === "READY" || status === "BUSY" ? 5000 : status === "SETUP_FAILED" || status === "DEFUNCT" ? 10000 : 700;
    setTimeout(pollHealth, again);
  }

  async function loadSchema() {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch("/openapi.json", { cache: "no-store" });
        if (response.ok) {
          state.schema = await response.json();
          break;
        }
        if (response.status !== 502 && response.status !== 503) {
          $("loading").textContent = `The model has no OpenAPI schema (HTTP ${response.status}).`;
          return;
        }
      } catch (_) {
        /* not up yet */
      }
      $("loading").textContent = "Waiting for the model's server to start…";
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 200 + attempt * 100)));
    }
    buildForm();
    document.body.dataset.ready = "true";
  }

  // -- wiring ------------------------------------------------------------------------------------------
  function init() {
    $("form").addEventListener("submit", submit);
    $("form").addEventListener("input", notifyChange);
    $("form").addEventListener("change", notifyChange);
    $("cancel").addEventListener("click", cancel);
    $("reset").addEventListener("click", () => {
      if (state.run || !state.schema) return;
      buildForm();
      clearErrors();
      const first = state.fields[0];
      if (first) first.control.focus();
    });
    $("clear-history").addEventListener("click", () => {
      saveHistory([]);
      renderHistory();
      $("form").querySelector("button, input, select, textarea").focus();
    });
    $("tab-curl").addEventListener("click", () => selectTab("curl"));
    $("tab-python").addEventListener("click", () => selectTab("python"));
    for (const id of ["tab-curl", "tab-python"]) {
      $(id).addEventListener("keydown", (event) => {
        if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
          event.preventDefault();
          selectTab(state.lang === "curl" ? "python" : "curl", true);
        }
      });
    }
    $("copy").addEventListener("click", copySnippet);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.run) {
        event.preventDefault();
        cancel();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        $("form").requestSubmit();
      }
    });
    renderHistory();
    pollHealth();
    loadSchema();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
