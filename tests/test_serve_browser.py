"""The page of `argenseg serve` in a real browser: headless Chromium (Debian's `chromium`
and `chromium-driver`), driven over the W3C WebDriver protocol with the standard library.
It loads the page, picks the bundled scene (which fills in its expression), submits,
waits for the overlay and the scale animation, and saves a screenshot
(`serve_page.png` in the test's temporary folder, path printed)."""

import base64
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest

from argenseg_jax import bundled
from argenseg_jax.serve.client import ServerProcess

CHROMIUM, DRIVER = pathlib.Path('/usr/bin/chromium'), pathlib.Path('/usr/bin/chromedriver')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run',
         '--window-size=1100,1000']
ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'  # the W3C key of an element reference

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason='needs Debian\'s chromium and chromium-driver (apt-get install chromium '
           'chromium-driver)')]


class Browser:
  """A WebDriver session of chromedriver at `url`."""

  def __init__(self, url: str, profile: pathlib.Path):
    self.url = url + 'session'
    options = {'binary': str(CHROMIUM), 'args': FLAGS + [f'--user-data-dir={profile}']}
    reply = self.call('POST', '', {'capabilities': {'alwaysMatch': {
        'browserName': 'chrome', 'goog:chromeOptions': options}}})
    self.url = f'{url}session/{reply["sessionId"]}'

  def call(self, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f'{self.url}/{path}'.rstrip('/'), data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=60) as r:
      return json.loads(r.read())['value']

  def run(self, script: str):
    return self.call('POST', 'execute/sync', {'script': script, 'args': []})

  def click(self, css: str) -> None:
    element = self.call('POST', 'element', {'using': 'css selector', 'value': css})[ELEMENT]
    self.call('POST', f'element/{element}/click', {})

  def wait_for(self, script: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
      value = self.run(script)
      if value:
        return value
      time.sleep(0.2)
    raise AssertionError(f'the page never made this true: {script}')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path):
  port = _free_port()
  driver = subprocess.Popen([str(DRIVER), f'--port={port}'], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
  url = f'http://127.0.0.1:{port}/'
  try:
    for _ in range(100):
      try:
        urllib.request.urlopen(url + 'status', timeout=2).close()
        break
      except OSError:
        time.sleep(0.1)
    session = Browser(url, tmp_path / 'profile')
    try:
      yield session
    finally:
      session.call('DELETE', '')  # closes Chromium
  finally:
    driver.terminate()
    driver.wait(30)


def test_the_page_segments_the_bundled_scene(browser, tmp_path):
  with ServerProcess(['--batch-sizes', '1'], tmp_path / 'server.log',
                     env=dict(os.environ, TMPDIR=str(tmp_path))) as server:
    browser.call('POST', 'url', {'url': server.url})
    browser.wait_for("return document.getElementById('model').textContent")
    browser.click('#scene')
    browser.wait_for("return document.getElementById('input').complete && "
                     "document.getElementById('input').naturalWidth")
    assert browser.run("return document.getElementById('text').value") == \
        bundled.SCENE_EXPRESSION
    browser.click('#go')
    browser.wait_for("const o = document.getElementById('overlay'); "
                     "return o.src.startsWith('data:image/png') && o.complete && o.naturalWidth")
    status = browser.run("return document.getElementById('status').textContent")
    assert status.startswith('Answered in') and 'without' not in status, status
    assert browser.run("return document.getElementById('scales').children.length") == 6
    assert browser.run("return document.getElementById('download').href").startswith(
        'data:image/png;base64,')
    assert browser.run("return document.getElementById('answer').textContent") == \
        '"Sure, the segmentation result: ."'
    first = browser.run("return document.getElementById('animcap').textContent")
    time.sleep(1.3)  # the animation moves on to a finer scale
    assert browser.run("return document.getElementById('animcap').textContent") != first
    shot = tmp_path / 'serve_page.png'
    shot.write_bytes(base64.b64decode(browser.call('GET', 'screenshot')))
    print(f'screenshot: {shot}')
