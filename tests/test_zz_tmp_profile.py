import collections, traceback
from test_wan_smb1 import smb1_site, Site  # noqa
from deployer.targets import traffic

def test_profile(smb1_site, monkeypatch):
    counts = collections.Counter()
    real = traffic.Meter.answered
    def answered(self, server=None):
        if self._waiting:
            st = traceback.extract_stack()
            t = next((f"{f.name}" for f in reversed(st) if f.filename.endswith(("smb1.py", "smb1batch.py", "smbshare.py"))), "?")
            c = "<".join([f"{f.filename.rsplit('/',1)[-1]}:{f.name}" for f in reversed(st) if "/deployer/" in f.filename and "/targets/" not in f.filename][:2])
            counts[(t, c)] += 1
        return real(self, server)
    monkeypatch.setattr(traffic.Meter, "answered", answered)
    ws = smb1_site.ws
    for args in (("apply", ws.playbook, "--yes"), ("rollback", "--yes")):
        counts.clear()
        r = ws.cli("-v", *args, "--site", "DEMO", "-i", ws.inventory)
        assert r.code == 0
        print("=====", args[0], sum(counts.values()))
        for k, v in counts.most_common(25):
            print(v, k)
