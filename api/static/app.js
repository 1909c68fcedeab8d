// The converter's web page (api/page.py serves it): upload with progress, follow the job,
// download the result, list recent jobs. It talks to the HTTP API of docs/api.md like any
// client. Server text is only ever set with textContent, never parsed as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "xmlconv.apiKey"; // sessionStorage only: gone when the tab closes
  const POLL_FIRST = 1; // seconds before polling a job again when the answer has no Retry-After…
  const POLL_MAX = 3; // …growing to this
  const JOBS_REFRESH = 10; // seconds between refreshes of the recent jobs
  const RETRIES = 5; // polls in a row that may fail (network, 429, 503) before giving up

  const root = document.documentElement;
  const authOn = root.dataset.auth === "api_key";
  const waitSeconds = Number(root.dataset.wait) || 0;
  // Files this large go straight into the object store (0: the server offers no direct uploads).
  const directMin = Number(root.dataset.directMin) || 0;
  const $ = (id) => document.getElementById(id);
  const el = {
    apiKey: $("api-key"), keyForm: $("key-form"), forgetKey: $("forget-key"),
    keyStatus: $("key-status"), form: $("convert-form"), file: $("file"),
    dropZone: $("drop-zone"), chosen: $("file-chosen"), format: $("format"),
    moreOptions: $("more-options"), convert: $("convert"), cancel: $("cancel"),
    section: $("progress-section"), stage: $("stage"), progress: $("progress"),
    error: $("error"), errorMessage: $("error-message"), errorPosition: $("error-position"),
    errorCode: $("error-code"), done: $("done"), download: $("download"),
    resultInfo: $("result-info"), jobsNote: $("jobs-note"), jobs: $("jobs"),
    jobsBody: $("jobs-body"), refreshJobs: $("refresh-jobs"),
  };

  // -- the API key --------------------------------------------------------------------------

  function apiKey() {
    return authOn ? (sessionStorage.getItem(KEY_STORAGE) || "") : "";
  }

  function authHeaders() {
    const key = apiKey();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  // -- talking to the API -------------------------------------------------------------------

  function retryAfter(value) {
    if (!value) return null;
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds;
    const date = Date.parse(value);
    return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
  }

  // An answer other than 2xx, as an Error carrying the API's {code, message, details}.
  function apiError(status, text, retry) {
    let body = null;
    try {
      body = JSON.parse(text).error;
    } catch (_) {
      body = null;
    }
    if (!body || typeof body !== "object") {
      body = { code: "HTTP_" + status, message: "The server answered with status " + status + "." };
    }
    const error = new Error(String(body.message || ""));
    error.status = status;
    error.code = String(body.code || "");
    error.details = body.details && typeof body.details === "object" ? body.details : {};
    error.retryAfter = retry;
    return error;
  }

  function networkError() {
    const error = new Error("The service could not be reached. Check the connection and try again.");
    error.status = 0;
    error.code = "NETWORK_ERROR";
    error.details = {};
    error.retryAfter = null;
    return error;
  }

  async function api(path, method = "GET", json = undefined) {
    const init = { method, cache: "no-store", headers: authHeaders() };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_) {
      throw networkError();
    }
    const text = await response.text();
    const retry = retryAfter(response.headers.get("Retry-After"));
    if (!response.ok) throw apiError(response.status, text, retry);
    return { body: text ? JSON.parse(text) : null, status: response.status, retryAfter: retry };
  }

  // -- what a person reads ------------------------------------------------------------------

  function size(bytes) {
    if (!Number.isFinite(bytes)) return "";
    const units = ["bytes", "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return (unit ? value.toFixed(value < 10 ? 1 : 0) : String(value)) + " " + units[unit];
  }

  // Line and column of a job's error or an API error: at the top level today, maybe under
  // `details` tomorrow.
  function position(error) {
    const details = (error && error.details) || {};
    const line = error.line ?? details.line;
    const column = error.column ?? details.column;
    if (line == null) return "";
    return column == null ? "Line " + line : "Line " + line + ", column " + column;
  }

  function readable(error) {
    const message = error.message || "Something went wrong.";
    const later = error.retryAfter ? " Try again in " + Math.ceil(error.retryAfter) + " s." : "";
    switch (error.status) {
      case 401:
        return "Your API key was not accepted: " + message;
      case 413:
        return "The file is too large: " + message;
      case 429:
      case 503:
        return message.endsWith(".") || !later ? message + later : message + "." + later;
      default:
        return message;
    }
  }

  // -- this conversion's panel --------------------------------------------------------------

  function setStage(text, percent) {
    el.stage.textContent = text;
    if (percent == null) el.progress.removeAttribute("value");
    else el.progress.value = percent;
  }

  function clearOutcome() {
    el.error.hidden = true;
    el.done.hidden = true;
    el.errorPosition.hidden = true;
  }

  // `error`: an API error, a job's error ({code, message, line, column}) or a plain message.
  function showError(error, heading) {
    el.section.hidden = false;
    el.error.hidden = false;
    el.done.hidden = true;
    const text = typeof error === "string" ? error : error.status != null ? readable(error) :
      error.message || "The conversion failed.";
    el.errorMessage.textContent = heading ? heading + " " + text : text;
    const where = typeof error === "string" ? "" : position(error);
    el.errorPosition.textContent = where;
    el.errorPosition.hidden = !where;
    el.errorCode.textContent = typeof error === "string" || !error.code ? "" : "Code: " + error.code;
  }

  function resultName(job) {
    const name = (job.input && job.input.filename) || "result";
    const stem = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : name;
    const ext = { json: "json", jsonl: "jsonl", csv: "csv", yaml: "yaml", text: "txt" }[job.format];
    return (stem || "result") + "." + (ext || job.format);
  }

  function filenameFrom(disposition) {
    if (!disposition) return "";
    const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
    if (star) {
      try {
        return decodeURIComponent(star[1].trim());
      } catch (_) {
        /* fall through to the plain name */
      }
    }
    const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
    return plain ? plain[1].trim() : "";
  }

  // With keys on, a link cannot send the Authorization header: fetch the result, then save
  // it from memory. Without keys, the link itself downloads (streamed by the browser).
  async function downloadWithKey(job) {
    let response;
    try {
      response = await fetch(job.links.result, { cache: "no-store", headers: authHeaders() });
    } catch (_) {
      throw networkError();
    }
    if (!response.ok) {
      throw apiError(response.status, await response.text(),
        retryAfter(response.headers.get("Retry-After")));
    }
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const save = document.createElement("a");
    save.href = url;
    save.download = filenameFrom(response.headers.get("Content-Disposition")) || resultName(job);
    save.hidden = true;
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  function makeDownload(link, job, onError) {
    link.href = job.links.result;
    if (!authOn) {
      link.setAttribute("download", "");
      return;
    }
    link.removeAttribute("download");
    link.onclick = async (event) => {
      event.preventDefault();
      link.setAttribute("aria-busy", "true");
      try {
        await downloadWithKey(job);
      } catch (error) {
        onError(error);
      } finally {
        link.removeAttribute("aria-busy");
      }
    };
  }

  function showJob(job) {
    const progress = job.progress || {};
    const percent = Number(progress.percent) || 0;
    switch (job.status) {
      case "queued":
        setStage("Queued: waiting for a worker…", null);
        break;
      case "running":
        setStage("Converting… " + percent.toFixed(0) + "% (" + size(progress.bytes_done) +
          " of " + size(progress.bytes_total) + ")", percent);
        break;
      case "succeeded": {
        const result = job.result || {};
        setStage("Done: " + (job.input && job.input.filename) + " converted to " +
          job.format.toUpperCase() + ".", 100);
        const records = result.records != null ? ", " + result.records + " records" : "";
        el.resultInfo.textContent = resultName(job) + " (" + size(result.size_bytes) + records + ")";
        makeDownload(el.download, job, (error) => showError(error, "The download failed."));
        el.error.hidden = true;
        el.done.hidden = false;
        break;
      }
      case "failed":
        setStage("The conversion failed.", 0);
        showError(job.error || { message: "The conversion failed." });
        break;
      case "cancelled":
        setStage("Cancelled.", 0);
        break;
      default:
        setStage("Status: " + job.status, null);
    }
  }

  // -- submitting and following one job -----------------------------------------------------

  let current = null; // {xhr, jobId, cancelled, wake}

  function sleep(seconds) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      current.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  function unescapeText(text) {
    return text.replace(/\\(\\|n|t)/g, (_, c) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\"));
  }

  function fieldProblem(input, message) {
    const error = new Error(message);
    error.input = input;
    return error;
  }

  // Only the options that differ from their defaults are sent.
  function buildForm(file) {
    const form = new FormData();
    form.append("format", el.format.value);
    for (const input of el.form.querySelectorAll("[data-option]")) {
      if (input.type === "number" && !input.checkValidity()) {
        const label = el.form.querySelector('label[for="' + input.id + '"]').textContent;
        throw fieldProblem(input, label + ": " + input.validationMessage);
      }
      let value = input.type === "checkbox" ? String(input.checked) : input.value;
      if (value === input.dataset.default) continue;
      if (input.type === "number" && value === "") continue; // the default
      if (input.hasAttribute("data-escaped")) value = unescapeText(value);
      form.append(input.name, value);
    }
    form.append("file", file, file.name);
    return form;
  }

  function focusField(input) {
    if (!input) return;
    if (el.moreOptions.contains(input)) el.moreOptions.open = true;
    input.focus();
  }

  function upload(form, file) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      current.xhr = xhr;
      xhr.open("POST", "/jobs" + (waitSeconds > 0 ? "?wait=" + waitSeconds : ""));
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("loadstart", () => setStage("Uploading " + file.name + "…", 0));
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable || !event.total) return;
        const percent = (100 * event.loaded) / event.total;
        setStage("Uploading… " + percent.toFixed(0) + "% (" + size(event.loaded) + " of " +
          size(event.total) + ")", percent);
      });
      xhr.upload.addEventListener("load", () => setStage("Uploaded. Converting…", null));
      xhr.addEventListener("load", () => {
        const retry = retryAfter(xhr.getResponseHeader("Retry-After"));
        if (xhr.status === 200 || xhr.status === 202) {
          try {
            resolve({ job: JSON.parse(xhr.responseText), retryAfter: retry });
          } catch (_) {
            reject(apiError(xhr.status, "", retry));
          }
        } else {
          reject(apiError(xhr.status, xhr.responseText, retry));
        }
      });
      xhr.addEventListener("error", () => reject(networkError()));
      xhr.addEventListener("abort", () => {
        const error = new Error("Upload cancelled.");
        error.cancelled = true;
        reject(error);
      });
      xhr.send(form);
    });
  }

  // -- direct uploads: a large file straight into the object store, not through the API -------

  // POST /uploads answers a presigned URL a part; each part is PUT there (no API key: the URL
  // carries its own authority). Resolves with the upload's id, or null when the file must go
  // through POST /jobs instead: not offered (501, or 404 from an older server), or a part not
  // taken — the store's CORS rules do not name this page's origin, or the store is away. The
  // upload is then given up (DELETE /uploads/<id>), so that its quota slot comes back at once.
  async function directUpload(file) {
    let offer;
    try {
      offer = (await api("/uploads", "POST", { size_bytes: file.size, filename: file.name })).body;
    } catch (error) {
      if (error.status === 501 || error.status === 404) return null;
      throw error;
    }
    try {
      let offset = 0;
      for (const part of offer.parts) {
        if (current.cancelled) {
          const error = new Error("Upload cancelled.");
          error.cancelled = true;
          throw error;
        }
        await putPart(part.url, file, offset, part.size_bytes);
        offset += part.size_bytes;
      }
      return offer.id;
    } catch (error) {
      api("/uploads/" + encodeURIComponent(offer.id), "DELETE").catch(() => {});
      if (error.cancelled) throw error;
      return null;
    }
  }

  function putPart(url, file, offset, length) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      current.xhr = xhr;
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", (event) => {
        const done = offset + event.loaded;
        setStage("Uploading… " + (100 * done / file.size).toFixed(0) + "% (" + size(done) +
          " of " + size(file.size) + ")", (100 * done) / file.size);
      });
      xhr.addEventListener("load", () => (xhr.status >= 200 && xhr.status < 300 ? resolve() :
        reject(apiError(xhr.status, "", null))));
      xhr.addEventListener("error", () => reject(networkError()));
      xhr.addEventListener("abort", () => {
        const error = new Error("Upload cancelled.");
        error.cancelled = true;
        reject(error);
      });
      xhr.send(file.slice(offset, offset + length));
    });
  }

  // The job of a direct upload: its options in the query, no body.
  async function submitUpload(uploadId, form) {
    const query = new URLSearchParams({ upload_id: uploadId });
    for (const [name, value] of form) if (typeof value === "string") query.append(name, value);
    if (waitSeconds > 0) query.append("wait", String(waitSeconds));
    setStage("Uploaded. Converting…", null);
    const answer = await api("/jobs?" + query, "POST");
    return { job: answer.body, retryAfter: answer.retryAfter };
  }

  function finished(job) {
    return ["succeeded", "failed", "cancelled"].includes(job.status);
  }

  // Follow the job's changes as the API pushes them (GET /jobs/<id>/events, Server-Sent
  // Events): with an EventSource where no key is needed, and where one is, the same stream read
  // through fetch (an EventSource cannot send the Authorization header). Resolves with the job
  // as last seen: finished, or not when the stream could not be used (refused with 429/503, a
  // proxy, the network) or the person cancelled — follow() polls from there.
  function watch(job) {
    const path = "/jobs/" + encodeURIComponent(job.id) + "/events";
    return new Promise((resolve) => {
      const following = current;
      let latest = job;
      let over = false;
      let closeStream = () => {};
      const end = () => {
        if (over) return;
        over = true;
        closeStream();
        following.wake = null;
        resolve(latest);
      };
      const onJob = (data) => {
        if (over) return;
        if (following.cancelled) return end();
        latest = JSON.parse(data);
        showJob(latest);
        if (finished(latest)) end();
      };
      following.wake = end; // cancel() ends the stream
      if (!authOn && window.EventSource) {
        const source = new EventSource(path);
        closeStream = () => source.close();
        source.addEventListener("job", (event) => onJob(event.data));
        source.addEventListener("gone", end); // polling then shows why (410)
        // After a stream that ended early the EventSource reconnects by itself, sending the
        // last event's id (CONNECTING); a refused stream closes it (CLOSED): poll instead.
        source.addEventListener("error", () => {
          if (source.readyState === EventSource.CLOSED) end();
        });
      } else {
        const controller = new AbortController();
        closeStream = () => controller.abort();
        readStream(path, controller.signal, onJob).then(end, end);
      }
    });
  }

  // An event stream read with fetch, resumed with Last-Event-ID when it ends early; returns
  // when it cannot go on (a refusal, an answer that is not a stream, the network).
  async function readStream(path, signal, onJob) {
    let lastId = null;
    for (let quiet = 0; quiet < 3; ) {
      const headers = { Accept: "text/event-stream", ...authHeaders() };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await fetch(path, { cache: "no-store", headers, signal });
      const type = response.headers.get("Content-Type") || "";
      if (response.status !== 200 || !type.startsWith("text/event-stream")) return;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let seen = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") name = text;
            else if (field === "data") data.push(text);
            else if (field === "id") lastId = text;
          }
          if (name === "gone") return;
          if (name === "job" && data.length) {
            seen = true;
            onJob(data.join("\n"));
          }
        }
      }
      quiet = seen ? 0 : quiet + 1;
    }
  }

  // Poll GET /jobs/<id>: first after the submission's Retry-After, then after each answer's
  // Retry-After when it has one (429, 503), else a short growing interval.
  async function follow(job, firstDelay) {
    let delay = firstDelay ?? POLL_FIRST;
    let failures = 0;
    let pause = POLL_FIRST;
    while (!finished(job)) {
      showJob(job);
      await sleep(delay);
      if (current.cancelled) return null;
      try {
        const answer = await api("/jobs/" + encodeURIComponent(job.id));
        if (current.cancelled) return null; // cancel() shows the job from here on
        job = answer.body;
        failures = 0;
        delay = answer.retryAfter ?? pause;
        pause = Math.min(POLL_MAX, pause * 1.5);
      } catch (error) {
        if (![0, 429, 502, 503, 504].includes(error.status) || ++failures > RETRIES) throw error;
        delay = error.retryAfter ?? Math.min(30, 2 ** failures);
        setStage(readable(error) + " Checking again in " + Math.ceil(delay) + " s…", null);
      }
    }
    return job;
  }

  function busy(on) {
    el.convert.disabled = on;
    el.cancel.hidden = !on;
    el.form.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function convert(event) {
    event.preventDefault();
    if (current) return;
    clearOutcome();
    const file = el.file.files[0];
    if (!file) {
      showError("Choose an XML file first.");
      setStage("", 0);
      el.file.focus();
      return;
    }
    if (authOn && !apiKey()) {
      showError("Enter your API key first.");
      setStage("", 0);
      el.apiKey.focus();
      return;
    }
    let form;
    try {
      form = buildForm(file);
    } catch (error) {
      showError(error.message);
      setStage("", 0);
      focusField(error.input);
      return;
    }
    current = { xhr: null, jobId: null, cancelled: false, wake: null };
    el.section.hidden = false;
    busy(true);
    try {
      if (authOn) {
        // A refused key is answered before the body is read, and the connection closed: a
        // large upload would end as a network error. Ask once, cheaply, before sending it.
        setStage("Checking your API key…", null);
        await api("/jobs?limit=1");
      }
      const direct = directMin > 0 && file.size >= directMin ? await directUpload(file) : null;
      const submitted = direct ? await submitUpload(direct, form) : await upload(form, file);
      current.jobId = submitted.job.id;
      refreshJobs();
      let job = submitted.job;
      if (!finished(job)) job = await watch(job); // pushed; polled where it cannot be
      job = current.cancelled ? null : await follow(job, submitted.retryAfter);
      if (job) showJob(job);
    } catch (error) {
      if (error.cancelled) {
        setStage("Upload cancelled.", 0);
      } else {
        setStage(current.jobId ? "The job could not be followed." : "The file was not accepted.", 0);
        showError(error);
        if (error.status === 401) el.apiKey.focus();
        if (error.code === "INVALID_OPTION" && error.details.option) {
          focusField($("opt-" + error.details.option) || (error.details.option === "format" ?
            el.format : null));
        }
      }
    } finally {
      current = null;
      busy(false);
      refreshJobs();
    }
  }

  async function cancel() {
    if (!current) return;
    current.cancelled = true;
    if (!current.jobId) {
      if (current.xhr) current.xhr.abort();
      return;
    }
    const jobId = current.jobId;
    if (current.wake) current.wake();
    setStage("Cancelling…", null);
    try {
      const answer = await api("/jobs/" + encodeURIComponent(jobId), "DELETE");
      if (answer.body) showJob(answer.body);
      else setStage("Deleted.", 0);
    } catch (error) {
      showError(error, "The job could not be cancelled.");
    }
    refreshJobs();
  }

  // -- recent jobs --------------------------------------------------------------------------

  let jobsTimer = null;
  let jobsShown = "";
  let jobsRound = 0;

  function statusCell(job) {
    const cell = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "status status-" + job.status;
    badge.textContent = job.status;
    cell.append(badge);
    if (job.status === "running" && job.progress) {
      cell.append(" " + Number(job.progress.percent || 0).toFixed(0) + "%");
    }
    return cell;
  }

  function resultCell(job) {
    const cell = document.createElement("td");
    if (job.status === "succeeded") {
      const link = document.createElement("a");
      link.textContent = "Download";
      link.dataset.jobId = job.id;
      link.setAttribute("aria-label", "Download " + resultName(job));
      makeDownload(link, job, (error) => {
        el.jobsNote.textContent = "The download failed: " + readable(error);
      });
      cell.append(link);
    } else if (job.status === "failed" && job.error) {
      const where = position(job.error);
      cell.textContent = job.error.message + (where ? " (" + where + ")" : "");
      cell.className = "failure";
    }
    return cell;
  }

  function renderJobs(jobs) {
    const shown = JSON.stringify(jobs);
    if (shown === jobsShown) return; // unchanged: keep the rows (and the keyboard focus)
    jobsShown = shown;
    const focused = el.jobsBody.contains(document.activeElement) ?
      document.activeElement.dataset.jobId : null;
    const rows = jobs.map((job) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = (job.input && job.input.filename) || job.id;
      name.title = job.id;
      const format = document.createElement("td");
      format.textContent = job.format;
      const created = document.createElement("td");
      const time = document.createElement("time");
      time.dateTime = job.created_at || "";
      time.textContent = job.created_at ? new Date(job.created_at).toLocaleString() : "";
      created.append(time);
      row.append(name, format, statusCell(job), created, resultCell(job));
      return row;
    });
    el.jobsBody.replaceChildren(...rows);
    el.jobs.hidden = jobs.length === 0;
    if (focused) {
      const again = el.jobsBody.querySelector('[data-job-id="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
  }

  async function refreshJobs() {
    clearTimeout(jobsTimer);
    const round = ++jobsRound;
    let next = JOBS_REFRESH;
    if (authOn && !apiKey()) {
      renderJobs([]);
      el.jobsNote.textContent = "Enter your API key to see your jobs.";
      return;
    }
    try {
      const answer = await api("/jobs?limit=10");
      if (round !== jobsRound) return; // a newer refresh has started
      const jobs = (answer.body && answer.body.jobs) || [];
      renderJobs(jobs);
      el.jobsNote.textContent = jobs.length ? "" : "No jobs yet.";
    } catch (error) {
      if (round !== jobsRound) return;
      el.jobsNote.textContent = "The list could not be loaded: " + readable(error);
      if (error.retryAfter) next = Math.max(next, error.retryAfter);
    }
    if (!document.hidden) jobsTimer = setTimeout(refreshJobs, next * 1000);
  }

  // -- wiring -------------------------------------------------------------------------------

  function showChosen() {
    const file = el.file.files[0];
    el.chosen.textContent = file ? "Selected: " + file.name + " (" + size(file.size) + ")" : "";
  }

  function wireDropZone() {
    const zone = el.dropZone;
    const over = (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    };
    zone.addEventListener("dragenter", over);
    zone.addEventListener("dragover", over);
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) {
        el.file.files = files;
        showChosen();
      }
    });
    // A file dropped beside the zone must not replace the page with the file.
    for (const type of ["dragover", "drop"]) {
      window.addEventListener(type, (event) => {
        if (!zone.contains(event.target)) event.preventDefault();
      });
    }
  }

  function wireKey() {
    if (!authOn) return;
    el.apiKey.value = apiKey();
    const remember = () => {
      const key = el.apiKey.value.trim();
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    };
    el.apiKey.addEventListener("input", remember);
    el.keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      remember();
      el.keyStatus.textContent = apiKey() ? "Key kept for this tab." : "No key entered.";
      jobsShown = "";
      refreshJobs();
    });
    el.forgetKey.addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      el.apiKey.value = "";
      el.keyStatus.textContent = "Key forgotten.";
      refreshJobs();
      el.apiKey.focus();
    });
  }

  el.form.addEventListener("submit", convert);
  el.cancel.addEventListener("click", cancel);
  el.file.addEventListener("change", showChosen);
  el.refreshJobs.addEventListener("click", () => refreshJobs());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(jobsTimer);
    else refreshJobs();
  });
  wireDropZone();
  wireKey();
  showChosen();
  refreshJobs();
})();
