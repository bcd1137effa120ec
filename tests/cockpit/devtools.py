"""A headless Chromium driven through its DevTools protocol, with the standard library
only: `chromium --headless --remote-debugging-pipe` reads JSON commands separated by NUL
bytes on its descriptor 3 and writes responses and events on its descriptor 4."""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


class BrowserError(Exception):
    pass


def _above(fd, lowest):
    """`fd` moved to a descriptor number >= `lowest` (close-on-exec, as os.pipe's are)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


class Browser:
    """One Chromium process; page() opens a tab on a URL."""

    def __init__(self, binary=None, width=1400, height=1000):
        binary = binary or shutil.which("chromium")
        if binary is None:
            raise BrowserError("no chromium on PATH (Debian: apt-get install chromium; "
                               "scripts/setup-lab.sh installs it)")
        self.profile = tempfile.mkdtemp(prefix="policyhook-chromium-")
        commands_r, self._commands = os.pipe()      # we write, the browser reads on fd 3
        self._replies, replies_w = os.pipe()        # the browser writes on fd 4, we read
        # Above 3 and 4 first, so that neither dup2 below undoes the other or is a no-op
        # (which would leave close-on-exec set).
        commands_r, replies_w = (_above(commands_r, 10), _above(replies_w, 10))

        def descriptors():
            os.dup2(commands_r, 3)
            os.dup2(replies_w, 4)

        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
             "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=descriptors, close_fds=False)
        os.close(commands_r)
        os.close(replies_w)
        self.width, self.height = width, height
        self._buffer = b""
        self._next = 0
        self.events = []
        try:
            self.call("Browser.getVersion", timeout=60)
        except (BrowserError, OSError) as e:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            said = self.proc.stderr.read() if self.proc.poll() is not None else b""
            self.close()        # no profile or process left behind
            raise BrowserError("%s did not start: %s" % (binary, said.decode(errors="replace").strip()[-2000:]
                                                          or e)) from e

    def call(self, method, params=None, session=None, timeout=60):
        self._next += 1
        wanted = self._next
        message = {"id": wanted, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._read(deadline, method):
                if reply.get("id") == wanted:
                    if "error" in reply:
                        raise BrowserError("%s: %s" % (method, reply["error"].get("message")))
                    return reply.get("result", {})
                self.events.append(reply)

    def _read(self, deadline, what):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer %s in time" % what)
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    said = self.proc.stderr.read().decode(errors="replace")
                    raise BrowserError("Chromium exited: %s" % said[-2000:])
                self._buffer += chunk
        messages = []
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            messages.append(json.loads(raw))
        return messages

    def page(self, url):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for method in ("Page.enable", "Runtime.enable"):
            page.call(method)
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": url})
        return page

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser, session):
        self.browser = browser
        self.session = session

    def call(self, method, params=None, timeout=60):
        return self.browser.call(method, params, self.session, timeout)

    def js(self, expression, timeout=60):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError("%s: %s" % (expression[:80], details.get("exception", {}).get("description")
                                           or details.get("text")))
        return result["result"].get("value")

    def wait(self, expression, what, timeout=120):
        """Poll `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        problem = None
        while True:
            try:
                value = self.js(expression)
                if value:
                    return value
            except BrowserError as e:     # the page may still be loading
                problem = e
            if time.monotonic() > deadline:
                raise BrowserError("timed out after %d s waiting for %s (last: %s); the page's errors: %s"
                                   % (timeout, what, problem or value, self.errors() or "none"))
            time.sleep(0.25)

    def errors(self):
        """Exceptions thrown in the page and console errors, as text."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description") or details.get("text"))
            elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
                args = params.get("args", [])
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in args))
        return found

    def screenshot(self, path):
        """The whole page as PNG into `path`."""
        height = self.js("document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.browser.width, "height": max(int(height), 200), "deviceScaleFactor": 1,
                   "mobile": False})
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
