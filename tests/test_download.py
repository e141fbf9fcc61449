"""`skinseg download` against a local fake Dataverse (127.0.0.1, no real network), beyond nbs/api/08_download.ipynb:
the command, Range resume after a transfer cut midway, a bad checksum then a fixed server, and skipping finished files."""
import hashlib, io, json, re, threading, zipfile
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from pathlib import Path
import pytest

from skinseg.data import synthetic_dataset, find_pairs, check_dataset
from skinseg.download import download_ham10000, download_file, HAM10000_DOI
from conftest import run_inprocess

def ham_blobs(src:Path) -> dict:
    "The four HAM10000 release files (as bytes), built from a synthetic set; the mask zip has a top folder."
    imgs, blobs = sorted((src/'images').iterdir()), {}
    for name, files in [('HAM10000_images_part_1', imgs[:6]), ('HAM10000_images_part_2', imgs[6:]),
                        ('HAM10000_segmentations_lesion_tschandl', sorted((src/'masks').iterdir()))]:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, 'w') as z:
            for p in files: z.write(p, f'{name}/{p.stem}_segmentation.png' if 'segm' in name else p.name)
        blobs[f'{name}.zip'] = buf.getvalue()
    blobs['HAM10000_metadata.csv'] = (src/'metadata.csv').read_bytes()
    blobs['ISIC2018_Task3_Test_Images.zip'] = b'not wanted'  # listed by the real dataset too; must not be fetched
    return blobs

class FakeDataverse(BaseHTTPRequestHandler):
    "Serves the native-API listing and `/api/access/datafile/{id}`, with Range, cuts and wrong checksums on demand."
    blobs, cut_once, bad_md5, log = {}, set(), set(), []
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def names(self): return sorted(self.blobs)
    def do_GET(self):
        if self.path.startswith('/api/datasets/:persistentId/'):
            assert f'persistentId={HAM10000_DOI}' in self.path
            files = []
            for i, n in enumerate(self.names()):
                md5 = '0' * 32 if n in self.bad_md5 else hashlib.md5(self.blobs[n]).hexdigest()
                d = dict(id=100 + i, filename=n, md5=md5, filesize=len(self.blobs[n]))
                if n.endswith('.csv'): d.update(filename=n.replace('.csv', '.tab'), originalFileFormat='text/csv',
                                                originalFileName=n, originalFileSize=len(self.blobs[n]))
                files.append(dict(label=d['filename'], dataFile=d))
            return self.send(200, json.dumps(dict(status='OK', data=dict(latestVersion=dict(files=files)))).encode())
        m = re.match(r'/api/access/datafile/(\d+)(\?format=original)?$', self.path)
        name = self.names()[int(m.group(1)) - 100]
        if name.endswith('.csv'): assert m.group(2), "tabular files must be fetched in their original format"
        body = self.blobs[name]
        rng = self.headers.get('Range')
        start = int(re.match(r'bytes=(\d+)-$', rng).group(1)) if rng else 0
        self.log.append((name, start))
        if start >= len(body): return self.send(416, b'')
        headers = {'Content-Range': f'bytes {start}-{len(body) - 1}/{len(body)}'} if rng else {}
        cut = name in self.cut_once
        self.cut_once.discard(name)
        self.send(206 if rng else 200, body[start:], headers, cut=cut)
    def send(self, code, body, headers={}, cut=False):
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        for k, v in headers.items(): self.send_header(k, v)
        self.end_headers()
        if cut:  # promise the whole body, deliver half, hang up
            self.wfile.write(body[:len(body)//2]); self.wfile.flush(); self.close_connection = True
            self.connection.shutdown(2)
        else: self.wfile.write(body)

@pytest.fixture(scope='module')
def blobs(tmp_path_factory):
    return ham_blobs(synthetic_dataset(tmp_path_factory.mktemp('src')/'synth', n=12, size=(40, 50), seed=3))

@pytest.fixture
def server(blobs):
    FakeDataverse.blobs, FakeDataverse.cut_once, FakeDataverse.bad_md5, FakeDataverse.log = dict(blobs), set(), set(), []
    srv = ThreadingHTTPServer(('127.0.0.1', 0), FakeDataverse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_port}'
    srv.shutdown(); srv.server_close()

def test_download_command_fetches_only_what_it_needs(server, tmp_path, monkeypatch):
    "`skinseg download` credits the data, fetches only the four release files, leaves no zip or .part, and fetches nothing twice."
    monkeypatch.setenv('SKINSEG_DATAVERSE_URL', server)  # the env var sets the server, as for the CLI
    r = run_inprocess('download', '--dest', tmp_path/'ham', '--quiet')
    assert r.returncode == 0, r.stderr
    assert 'CC BY-NC-SA 4.0' in r.stdout and '12 images in' in r.stdout
    d = tmp_path/'ham'  # the layout, its pairs and their check: nbs/api/08_download.ipynb
    assert 'ISIC2018_Task3_Test_Images.zip' not in {n for n, _ in FakeDataverse.log}
    assert not list(d.glob('*.zip')) and not list(d.glob('*.part'))
    FakeDataverse.log.clear()  # a second run fetches nothing
    assert download_ham10000(d, base_url=server, progress=False) == d
    assert FakeDataverse.log == []

class NotDataverse(BaseHTTPRequestHandler):
    "Answers every request with JSON that is not a Dataverse file list, as another server at a wrong --base-url might."
    def log_message(self, *a): pass
    def do_GET(self):
        body = b'{"status": "OK", "data": {}}'
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)

def test_a_reply_that_is_not_a_file_list_is_one_line(tmp_path):
    srv = ThreadingHTTPServer(('127.0.0.1', 0), NotDataverse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try: r = run_inprocess('download', '--dest', tmp_path/'ham', '--base-url', f'http://127.0.0.1:{srv.server_port}', '--quiet')
    finally: srv.shutdown(); srv.server_close()
    assert r.returncode == 2 and 'not a Dataverse file list' in r.stderr, r.stderr

def test_cut_transfer_resumes_with_range(server, tmp_path):
    name = 'HAM10000_images_part_2.zip'
    FakeDataverse.cut_once = {name}
    download_ham10000(tmp_path/'ham', base_url=server, progress=False, retry_wait=0)
    starts = [s for n, s in FakeDataverse.log if n == name]
    assert starts == [0, len(FakeDataverse.blobs[name]) // 2], starts  # second request resumed at the cut
    assert len(find_pairs(tmp_path/'ham')) == 12

def test_part_file_from_an_earlier_run_is_resumed(server, tmp_path, blobs):
    name = 'HAM10000_metadata.csv'
    url = f"{server}/api/access/datafile/{100 + sorted(blobs).index(name)}?format=original"
    (tmp_path/f'{name}.part').write_bytes(blobs[name][:50])
    download_file(url, tmp_path/name, hashlib.md5(blobs[name]).hexdigest(), len(blobs[name]), progress=False)
    assert (tmp_path/name).read_bytes() == blobs[name] and FakeDataverse.log == [(name, 50)]

def test_bad_checksum_is_refused_and_deleted(server, tmp_path):
    FakeDataverse.bad_md5 = {'HAM10000_segmentations_lesion_tschandl.zip'}
    r = run_inprocess('download', '--dest', tmp_path/'ham', '--base-url', server, '--quiet')
    assert r.returncode == 2
    assert 'HAM10000_segmentations_lesion_tschandl.zip: checksum mismatch' in r.stderr
    assert not (tmp_path/'ham'/'HAM10000_segmentations_lesion_tschandl.zip.part').exists()
    assert not (tmp_path/'ham'/'HAM10000_segmentations_lesion_tschandl').exists()
    FakeDataverse.bad_md5 = set(); FakeDataverse.log.clear()  # fixed on the server: the next run completes
    download_ham10000(tmp_path/'ham', base_url=server, progress=False)
    assert {n for n, _ in FakeDataverse.log} == {'HAM10000_segmentations_lesion_tschandl.zip', 'HAM10000_metadata.csv'}
    assert len(find_pairs(tmp_path/'ham')) == 12

def test_unreachable_server_is_one_error_line(tmp_path):
    r = run_inprocess('download', '--dest', tmp_path/'ham', '--base-url', 'http://127.0.0.1:9', '--quiet')
    assert r.returncode == 2 and 'could not get the dataset' in r.stderr and 'doi.org/10.7910/DVN/DBW86T' in r.stderr

def test_file_downloaded_by_hand_is_used(server, tmp_path, blobs):
    "A zip with the right MD5 already in the destination (e.g. fetched in a browser) is unpacked, not downloaded."
    d = tmp_path/'ham'; d.mkdir()
    (d/'HAM10000_images_part_1.zip').write_bytes(blobs['HAM10000_images_part_1.zip'])
    (d/'HAM10000_images_part_2.zip').write_bytes(b'a broken copy')  # wrong MD5: downloaded again
    download_ham10000(d, base_url=server, progress=False)
    fetched = {n for n, _ in FakeDataverse.log}
    assert 'HAM10000_images_part_1.zip' not in fetched and 'HAM10000_images_part_2.zip' in fetched
    assert len(find_pairs(d)) == 12 and check_dataset(d) == []
