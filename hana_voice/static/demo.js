// Hana Voice browser demo: microphone in, reply audio out, transcript shown.
// Plain JavaScript, no build step, nothing fetched from elsewhere (the page works offline).
// Protocol: docs/protocol.md, "Browser JSON protocol". State for tests and debugging is on
// window.hanaDemo (counters, the log entries, the socket's close code).
"use strict";

(function () {
  const SEND_RATE = 16000;
  // 20 ms frames: small enough for prompt barge-in, few enough to keep the socket light.
  const FRAME_SAMPLES = SEND_RATE / 50;
  // Reply audio is scheduled this far ahead of "now" when the queue has run dry, so the first
  // chunk of a prompt is not clipped by the time it takes to reach the audio thread.
  const PLAY_LEAD_S = 0.05;
  const STOP_GRACE_MS = 3000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    setup: $("setup"), endpoint: $("endpoint"), questionnaire: $("questionnaire"),
    token: $("token"), echoCancel: $("echo-cancel"), start: $("start"), stop: $("stop"),
    status: $("status"), level: $("level"), keypad: $("keypad"), say: $("say"),
    text: $("text"), partial: $("partial"), log: $("log"),
  };

  const demo = {
    state: "idle",
    sessionId: null,
    closeCode: null,
    closeReason: null,
    result: null,
    endReason: null,
    entries: [],
    stats: {
      framesSent: 0, bytesSent: 0, chunksReceived: 0, chunksPlayed: 0, chunksDropped: 0,
      prompts: 0, promptsEnded: 0, transcripts: 0, bargeIns: 0, errors: 0,
    },
  };
  window.hanaDemo = demo;

  let ws = null;
  let mic = null;
  let player = null;
  let stopTimer = null;

  // ---- log pane ----------------------------------------------------------------------

  // The base direction of a text is that of its first strong character, as dir="auto" does;
  // set explicitly so that Arabic prompts lay out right to left whatever their punctuation.
  function direction(text) {
    const strong = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]|[A-Za-z\u00C0-\u024F]/.exec(text);
    return strong && /[^A-Za-z\u00C0-\u024F]/.test(strong[0]) ? "rtl" : "ltr";
  }

  function addEntry(kind, who, text, detail) {
    const item = document.createElement("li");
    item.className = kind;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    body.dir = direction(text);
    item.append(label, body);
    if (detail !== undefined) {
      const pre = document.createElement("pre");
      pre.textContent = detail;
      body.append(pre);
    }
    ui.log.append(item);
    ui.log.scrollTop = ui.log.scrollHeight;
    demo.entries.push({ kind: kind, who: who, text: text, dir: body.dir });
  }

  function setState(state, label) {
    demo.state = state;
    ui.status.dataset.state = state;
    ui.status.textContent = label || state;
    const active = state === "connecting" || state === "live" || state === "stopping";
    ui.start.disabled = active;
    ui.stop.disabled = !active;
  }

  // ---- microphone: capture, downsample to 16 kHz, 16-bit little-endian frames ----------

  // Box-filter decimation with a fractional step: averaging the input samples that fall in
  // each output sample's span is a cheap low-pass, enough for speech recognition.
  function makeDownsampler(inRate, outRate) {
    const step = inRate / outRate;
    let carry = new Float32Array(0);
    let pos = 0;
    return function (input) {
      const data = new Float32Array(carry.length + input.length);
      data.set(carry);
      data.set(input, carry.length);
      const out = new Float32Array(Math.max(0, Math.ceil((data.length - pos) / step)));
      let n = 0;
      while (pos + step <= data.length) {
        const first = Math.floor(pos);
        const last = Math.max(first + 1, Math.floor(pos + step));
        let sum = 0;
        for (let i = first; i < last; i++) sum += data[i];
        out[n++] = sum / (last - first);
        pos += step;
      }
      const used = Math.floor(pos);
      carry = data.slice(used);
      pos -= used;
      return out.subarray(0, n);
    };
  }

  function toPcm16(samples) {
    const bytes = new ArrayBuffer(samples.length * 2);
    const view = new DataView(bytes);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return bytes;
  }

  async function openMic(onFrame) {
    const processing = ui.echoCancel.checked;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: processing,
        noiseSuppression: processing,
        autoGainControl: processing,
      },
    });
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    // ScriptProcessor rather than an AudioWorklet: one file, and the work per buffer is tiny.
    const node = context.createScriptProcessor(1024, 1, 1);
    const downsample = makeDownsampler(context.sampleRate, SEND_RATE);
    let pending = new Float32Array(0);
    node.onaudioprocess = function (event) {
      const input = event.inputBuffer.getChannelData(0);
      let peak = 0;
      for (let i = 0; i < input.length; i++) peak = Math.max(peak, Math.abs(input[i]));
      ui.level.style.width = Math.min(100, Math.round(peak * 100)) + "%";
      const fresh = downsample(input);
      const joined = new Float32Array(pending.length + fresh.length);
      joined.set(pending);
      joined.set(fresh, pending.length);
      let offset = 0;
      for (; offset + FRAME_SAMPLES <= joined.length; offset += FRAME_SAMPLES) {
        onFrame(toPcm16(joined.subarray(offset, offset + FRAME_SAMPLES)));
      }
      pending = joined.slice(offset);
    };
    source.connect(node);
    // Chrome runs a ScriptProcessor only when it is connected to the output; it writes
    // nothing to its output buffer, so this plays silence, not the microphone.
    node.connect(context.destination);
    if (context.state === "suspended") await context.resume();
    return {
      rate: context.sampleRate,
      close: function () {
        node.onaudioprocess = null;
        source.disconnect();
        node.disconnect();
        stream.getTracks().forEach((track) => track.stop());
        context.close();
        ui.level.style.width = "0";
      },
    };
  }

  // ---- reply audio: a scheduled queue of AudioBuffers -----------------------------------

  function mulawToFloat(byte) {
    const u = ~byte & 0xff;
    const magnitude = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    return ((u & 0x80 ? 0x84 - magnitude : magnitude - 0x84)) / 32768;
  }

  function makePlayer() {
    const context = new AudioContext();
    const playing = new Set();
    let nextTime = 0;
    let format = { encoding: "pcm_s16le", rate: SEND_RATE };
    return {
      context: context,
      format: function (encoding, rate) { format = { encoding: encoding, rate: rate }; },
      play: function (data) {
        let samples;
        if (format.encoding === "pcm_s16le") {
          const view = new DataView(data, 0, data.byteLength - (data.byteLength % 2));
          samples = new Float32Array(view.byteLength / 2);
          for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(i * 2, true) / 32768;
        } else if (format.encoding === "mulaw") {
          const bytes = new Uint8Array(data);
          samples = new Float32Array(bytes.length);
          for (let i = 0; i < bytes.length; i++) samples[i] = mulawToFloat(bytes[i]);
        } else {
          addEntry("error", "demo", "cannot play reply audio encoded as " + format.encoding);
          return;
        }
        if (!samples.length) return;
        const buffer = context.createBuffer(1, samples.length, format.rate);
        buffer.copyToChannel(samples, 0);
        const source = context.createBufferSource();
        source.buffer = buffer;
        source.connect(context.destination);
        const at = Math.max(nextTime, context.currentTime + PLAY_LEAD_S);
        source.onended = function () {
          if (playing.delete(source)) demo.stats.chunksPlayed += 1;
        };
        playing.add(source);
        source.start(at);
        nextTime = at + buffer.duration;
      },
      // Barge-in: the caller is talking over the prompt, so drop everything not yet heard.
      flush: function () {
        const dropped = playing.size;
        playing.forEach(function (source) {
          playing.delete(source);
          try { source.stop(); } catch (e) { /* never started: nothing to stop */ }
        });
        nextTime = 0;
        return dropped;
      },
      close: function () { this.flush(); context.close(); },
    };
  }

  // ---- the call -------------------------------------------------------------------------

  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const token = ui.token.value.trim();
    const query = token ? "?token=" + encodeURIComponent(token) : "";
    return scheme + "//" + location.host + ui.endpoint.value + query;
  }

  function onMessage(message) {
    switch (message.type) {
      case "ready":
        demo.sessionId = message.session_id;
        setState("live", "live · " + String(message.session_id).slice(0, 8));
        addEntry("info", "server", "ready, session " + message.session_id);
        break;
      case "audio.start":
        demo.stats.prompts += 1;
        player.format(message.encoding || "pcm_s16le", message.sample_rate || SEND_RATE);
        addEntry("prompt", "Hana", message.text || "(audio)");
        break;
      case "audio.end":
        demo.stats.promptsEnded += 1;
        if (message.interrupted) addEntry("info", "Hana", "(interrupted)");
        break;
      case "speech.started": {
        demo.stats.bargeIns += 1;
        const dropped = player.flush();
        demo.stats.chunksDropped += dropped;
        if (dropped) addEntry("info", "demo", "barge-in: dropped " + dropped + " queued chunks");
        break;
      }
      case "transcript":
        if (message.final) {
          demo.stats.transcripts += 1;
          ui.partial.textContent = "";
          addEntry("transcript", "you said", message.text);
        } else {
          ui.partial.textContent = message.text;
        }
        break;
      case "result":
        demo.result = message.result;
        addEntry("result", "result", "", JSON.stringify(message.result, null, 2));
        break;
      case "redirect":
        addEntry("info", "server", "transfer to a person: " + (message.reason || ""));
        break;
      case "error":
        demo.stats.errors += 1;
        addEntry("error", "error", message.code + ": " + message.message);
        break;
      case "end":
        demo.endReason = message.reason;
        addEntry("end", "end", message.reason || "");
        break;
      default:
        addEntry("info", "server", JSON.stringify(message));
    }
  }

  async function start() {
    if (ws) return;
    demo.closeCode = demo.closeReason = demo.result = demo.endReason = demo.sessionId = null;
    setState("connecting", "connecting…");
    // Both contexts are created inside the click handler: browsers only let a page start
    // audio from a user gesture.
    player = makePlayer();
    let ready = false;
    const socket = new WebSocket(socketUrl());
    ws = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = function () {
      const questionnaire = ui.questionnaire.value.trim();
      const message = {
        type: "start", encoding: "pcm_s16le", sample_rate: SEND_RATE,
        output_encoding: "pcm_s16le", call_id: "demo-" + Date.now().toString(36),
      };
      if (questionnaire) message.questionnaire_id = questionnaire;
      socket.send(JSON.stringify(message));
    };
    socket.onmessage = function (event) {
      if (typeof event.data === "string") {
        let message;
        try { message = JSON.parse(event.data); } catch (e) {
          addEntry("server", "server", event.data);
          return;
        }
        if (message.type === "ready") ready = true;
        onMessage(message);
      } else {
        demo.stats.chunksReceived += 1;
        player.play(event.data);
      }
    };
    socket.onerror = function () { addEntry("error", "demo", "WebSocket error"); };
    socket.onclose = function (event) {
      demo.closeCode = event.code;
      demo.closeReason = event.reason;
      addEntry(event.code === 1000 ? "info" : "error", "closed",
        event.code + (event.reason ? " " + event.reason : ""));
      finish(event.code === 1000 ? "ended" : "error", "closed " + event.code);
    };
    // Handlers are set before this await: the socket may open while the user is asked for
    // the microphone, and an event with no handler yet is lost.
    try {
      const opened = await openMic(function (frame) {
        if (!ready || socket.readyState !== WebSocket.OPEN) return;
        socket.send(frame);
        demo.stats.framesSent += 1;
        demo.stats.bytesSent += frame.byteLength;
      });
      if (ws !== socket) {
        opened.close();  // the call ended while the browser was opening the microphone
        return;
      }
      mic = opened;
      addEntry("info", "demo", "microphone on (" + mic.rate + " Hz, sent as 16000 Hz)");
    } catch (err) {
      addEntry("error", "demo", "no microphone (" + err.name + "); the keypad and text still work");
    }
  }

  function finish(state, label) {
    if (stopTimer) clearTimeout(stopTimer);
    stopTimer = null;
    if (mic) mic.close();
    mic = null;
    // The player stays open until the queued reply (often the closing words) has played.
    ws = null;
    setState(state, label);
  }

  function stop() {
    if (!ws) return;
    setState("stopping", "stopping…");
    if (mic) mic.close();
    mic = null;
    if (!send({ type: "stop" })) {
      ws.close();
      return;
    }
    const socket = ws;
    // The server answers stop by closing (1000); if it never does, close from this side.
    stopTimer = setTimeout(function () { socket.close(1000, "stop"); }, STOP_GRACE_MS);
  }

  // ---- controls -------------------------------------------------------------------------

  ui.setup.addEventListener("submit", function (event) {
    event.preventDefault();
    if (player) player.close();
    start();
  });
  ui.stop.addEventListener("click", stop);
  ui.keypad.addEventListener("click", function (event) {
    const digit = event.target.dataset && event.target.dataset.digit;
    if (!digit) return;
    if (send({ type: "dtmf", digit: digit })) addEntry("dtmf", "keypad", digit);
  });
  ui.say.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (text && send({ type: "text", text: text })) {
      addEntry("transcript", "you typed", text);
      ui.text.value = "";
    }
  });

  // ?endpoint=, ?questionnaire= and ?token= prefill the form (a token minted by a back end
  // can be handed over in a link); ?ec=0 turns the microphone's echo cancellation off.
  const params = new URLSearchParams(location.search);
  const endpoint = params.get("endpoint");
  if (endpoint && endpoint.charAt(0) === "/") {
    if (!Array.from(ui.endpoint.options).some((option) => option.value === endpoint)) {
      ui.endpoint.append(new Option(endpoint, endpoint));
    }
    ui.endpoint.value = endpoint;
  }
  if (params.get("questionnaire")) ui.questionnaire.value = params.get("questionnaire");
  if (params.get("token")) ui.token.value = params.get("token");
  if (params.get("ec") === "0") ui.echoCancel.checked = false;
  setState("idle");
})();
