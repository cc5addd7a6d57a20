use super::*;

#[test]
fn smoke_fixtures() {
    let dir = std::path::Path::new("/work/shared/fixtures");
    let mut files = vec![];
    fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p, out) } else if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") { out.push(p) }
        }
    }
    walk(dir, &mut files);
    files.sort();
    for f in files {
        let mut r = CaptureReader::open(&f).unwrap();
        let mut n = 0; let mut err = None; let mut v = [0usize; 3];
        for d in r.by_ref() { match d { Ok(d) => { n += 1; if d.payload.len() >= 2 { match u16::from_be_bytes([d.payload[0], d.payload[1]]) { 5 => v[0]+=1, 9 => v[1]+=1, 10 => v[2]+=1, _ => {} } } } Err(e) => err = Some(e) } }
        println!("{} n={n} v5/9/10={v:?} err={err:?}\n   {:?}", f.display(), r.stats());
    }
}
