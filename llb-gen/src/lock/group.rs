//! Grouping selected files into layers, stable under small lock changes: a family (torch and
//! its companions, `nvidia-*`) is one group, a large wheel stands alone, and small ones go to one
//! of a fixed number of buckets chosen by a hash of the package name, so adding, removing or
//! updating one package changes only the group it is (or was) in.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::select::LockedFile;

/// A family: packages released and upgraded together, installed as one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    /// Normalized names that belong.
    pub names: Vec<String>,
    /// Normalized name prefixes that belong (`nvidia-`).
    pub prefixes: Vec<String>,
}

/// The grouping parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub families: Vec<Family>,
    /// A file above this many bytes is a group of its own.
    pub large_bytes: u64,
    /// At most this many large files stand alone (the largest ones); the rest are bucketed.
    pub max_large: usize,
    /// The number of buckets small files are hashed into.
    pub buckets: u32,
}

impl Default for Rules {
    fn default() -> Rules {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Rules {
            families: vec![
                Family {
                    name: "torch".into(),
                    names: s(&[
                        "torch",
                        "torchvision",
                        "torchaudio",
                        "triton",
                        "pytorch-triton",
                    ]),
                    prefixes: s(&["nvidia-"]),
                },
                Family {
                    name: "jax".into(),
                    names: s(&["jax", "jaxlib"]),
                    prefixes: s(&["jax-cuda"]),
                },
            ],
            large_bytes: 8 << 20,
            max_large: 32,
            buckets: 16,
        }
    }
}

impl Rules {
    /// The most groups these rules can make: families + large files + buckets. Well under
    /// BuildKit's 127-layer limit with the defaults (2 + 32 + 16 = 50).
    pub fn max_groups(&self) -> usize {
        self.families.len() + self.max_large + self.buckets as usize
    }
}

/// Why files share a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupKind {
    Family,
    Large,
    Bucket,
}

/// One layer's worth of files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Stable id: the family name, `pkg-NAME` or `small-NN`.
    pub id: String,
    pub kind: GroupKind,
    /// Sorted by name.
    pub files: Vec<LockedFile>,
    /// Sum of the known file sizes.
    pub size: u64,
    /// Whether some file's size is unknown (the lock has no `size`).
    pub size_partial: bool,
}

/// Group `files` by `rules`. Groups come sorted by id.
pub fn group(files: &[LockedFile], rules: &Rules) -> Vec<Group> {
    let mut large: Vec<&LockedFile> = files
        .iter()
        .filter(|f| family_of(&f.name, rules).is_none())
        .filter(|f| f.size.is_some_and(|s| s > rules.large_bytes))
        .collect();
    large.sort_by(|a, b| b.size.cmp(&a.size).then(a.name.cmp(&b.name)));
    large.truncate(rules.max_large);
    let standalone: Vec<&str> = large.iter().map(|f| f.name.as_str()).collect();
    let mut map: BTreeMap<String, (GroupKind, Vec<LockedFile>)> = BTreeMap::new();
    for f in files {
        let (id, kind) = if let Some(fam) = family_of(&f.name, rules) {
            (fam.to_string(), GroupKind::Family)
        } else if standalone.contains(&f.name.as_str()) {
            (format!("pkg-{}", f.name), GroupKind::Large)
        } else {
            (
                format!("small-{:02}", bucket(&f.name, rules.buckets)),
                GroupKind::Bucket,
            )
        };
        map.entry(id)
            .or_insert_with(|| (kind, Vec::new()))
            .1
            .push(f.clone());
    }
    map.into_iter()
        .map(|(id, (kind, mut files))| {
            files.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
            Group {
                id,
                kind,
                size: files.iter().filter_map(|f| f.size).sum(),
                size_partial: files.iter().any(|f| f.size.is_none()),
                files,
            }
        })
        .collect()
}

impl Group {
    /// The group's download size for people (`1.2 MB`, `≥ 2.4 GB` when some file's size is
    /// unknown), or None when the lock has no size for any of its files.
    pub fn size_text(&self) -> Option<String> {
        if self.files.iter().all(|f| f.size.is_none()) {
            return None;
        }
        let partial = if self.size_partial { "≥ " } else { "" };
        let s = self.size as f64;
        Some(if s >= 1e9 {
            format!("{partial}{:.1} GB", s / 1e9)
        } else if s >= 1e6 {
            format!("{partial}{:.1} MB", s / 1e6)
        } else {
            format!("{partial}{:.1} kB", s / 1e3)
        })
    }

    /// `small-03 (1.2 MB)`: the id and, where the lock has sizes, the size.
    pub fn label(&self) -> String {
        match self.size_text() {
            Some(s) => format!("{} ({s})", self.id),
            None => self.id.clone(),
        }
    }
}

fn family_of<'r>(name: &str, rules: &'r Rules) -> Option<&'r str> {
    rules
        .families
        .iter()
        .find(|f| {
            f.names.iter().any(|n| n == name)
                || f.prefixes.iter().any(|p| name.starts_with(p.as_str()))
        })
        .map(|f| f.name.as_str())
}

/// The bucket of a normalized name: the first 4 bytes of its sha256, modulo `buckets`.
pub fn bucket(name: &str, buckets: u32) -> u32 {
    let d = Sha256::digest(name.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % buckets.max(1)
}

#[cfg(test)]
mod tests {
    use super::super::select::FileKind;
    use super::*;
    use std::collections::BTreeSet;

    fn file(name: &str, version: u64, size: u64) -> LockedFile {
        LockedFile {
            name: name.to_string(),
            version: format!("1.{version}"),
            filename: format!("{}-1.{version}-py3-none-any.whl", name.replace('-', "_")),
            url: format!("https://files.example/{name}-1.{version}.whl"),
            sha256: format!("{:064x}", version),
            size: Some(size),
            kind: FileKind::Wheel {
                tags: vec!["py3-none-any".into()],
            },
            pure: true,
        }
    }

    #[test]
    fn sizes_for_people() {
        let g = |files: Vec<LockedFile>| Group {
            id: "small-03".into(),
            kind: GroupKind::Bucket,
            size: files.iter().filter_map(|f| f.size).sum(),
            size_partial: files.iter().any(|f| f.size.is_none()),
            files,
        };
        let (a, b, c) = (
            file("a", 1, 1_200),
            file("b", 2, 3_400_000),
            file("c", 3, 2_500_000_000),
        );
        assert_eq!(g(vec![a.clone()]).size_text().as_deref(), Some("1.2 kB"));
        assert_eq!(g(vec![b.clone()]).label(), "small-03 (3.4 MB)");
        assert_eq!(
            g(vec![a.clone(), b.clone(), c.clone()]).label(),
            "small-03 (2.5 GB)"
        );
        let unknown = LockedFile { size: None, ..a };
        assert_eq!(
            g(vec![unknown.clone(), c]).size_text().as_deref(),
            Some("≥ 2.5 GB")
        );
        assert_eq!(g(vec![unknown]).label(), "small-03");
    }

    /// xorshift64*: deterministic pseudo-random numbers for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const NAMES: &[&str] = &[
        "torch",
        "torchvision",
        "triton",
        "nvidia-cublas-cu12",
        "nvidia-cudnn-cu12",
        "jaxlib",
    ];

    fn random_lock(rng: &mut Rng, n: usize) -> Vec<LockedFile> {
        let mut names = BTreeSet::new();
        while names.len() < n {
            let name = if rng.below(10) == 0 {
                NAMES[rng.below(NAMES.len() as u64) as usize].to_string()
            } else {
                format!("pkg-{}", rng.below(5000))
            };
            names.insert(name);
        }
        names.into_iter().map(|n| random_file(rng, &n)).collect()
    }

    fn random_file(rng: &mut Rng, name: &str) -> LockedFile {
        // 1 in 20 is large (9–900 MB: above the 8 MiB of `large_bytes`), the rest 10 kB–8 MB.
        let size = if rng.below(20) == 0 {
            (9 + rng.below(891)) << 20
        } else {
            10_000 + rng.below((8 << 20) - 10_000)
        };
        file(name, rng.below(1000), size)
    }

    fn by_id(groups: &[Group]) -> BTreeMap<String, Vec<LockedFile>> {
        groups
            .iter()
            .map(|g| (g.id.clone(), g.files.clone()))
            .collect()
    }

    fn group_of(groups: &[Group], name: &str) -> Option<String> {
        groups
            .iter()
            .find(|g| g.files.iter().any(|f| f.name == name))
            .map(|g| g.id.clone())
    }

    /// Adding, removing or updating one package changes at most the group(s) it is in before
    /// and after, over many generated locks.
    #[test]
    fn one_package_change_touches_only_its_groups() {
        let rules = Rules::default();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for _ in 0..400 {
            let n = 5 + rng.below(150) as usize;
            let before = random_lock(&mut rng, n);
            let mut after = before.clone();
            let name = match rng.below(3) {
                0 => {
                    let fresh = format!("new-{}", rng.below(1 << 30));
                    let f = random_file(&mut rng, &fresh);
                    let name = f.name.clone();
                    after.push(f);
                    name
                }
                1 => after.remove(rng.below(after.len() as u64) as usize).name,
                _ => {
                    let i = rng.below(after.len() as u64) as usize;
                    let mut f = random_file(&mut rng, &after[i].name.clone());
                    f.version = format!("{}.post1", after[i].version);
                    after[i] = f;
                    after[i].name.clone()
                }
            };
            let g0 = group(&before, &rules);
            let g1 = group(&after, &rules);
            assert!(g0.len() <= rules.max_groups() && g1.len() <= rules.max_groups());
            let allowed: BTreeSet<String> = [group_of(&g0, &name), group_of(&g1, &name)]
                .into_iter()
                .flatten()
                .collect();
            let (m0, m1) = (by_id(&g0), by_id(&g1));
            let ids: BTreeSet<&String> = m0.keys().chain(m1.keys()).collect();
            for id in ids {
                if m0.get(id) != m1.get(id) {
                    assert!(
                        allowed.contains(id),
                        "changing `{name}` changed group `{id}` (allowed: {allowed:?})"
                    );
                }
            }
            checked += 1;
        }
        assert_eq!(checked, 400);
    }

    #[test]
    fn families_large_and_buckets() {
        let rules = Rules::default();
        let files = vec![
            file("torch", 1, 800 << 20),
            file("nvidia-cublas-cu12", 1, 400 << 20),
            file("triton", 1, 200 << 20),
            file("opencv-python", 1, 70 << 20),
            file("six", 1, 11_000),
            file("idna", 1, 70_000),
        ];
        let g = group(&files, &rules);
        let torch = g.iter().find(|g| g.id == "torch").unwrap();
        assert_eq!(torch.kind, GroupKind::Family);
        assert_eq!(
            torch
                .files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            ["nvidia-cublas-cu12", "torch", "triton"]
        );
        assert_eq!(torch.size, 1400 << 20);
        let cv = g.iter().find(|g| g.id == "pkg-opencv-python").unwrap();
        assert_eq!(cv.kind, GroupKind::Large);
        let six = group_of(&g, "six").unwrap();
        assert_eq!(six, format!("small-{:02}", bucket("six", 16)));
        assert_eq!(g.iter().map(|g| g.files.len()).sum::<usize>(), files.len());
    }

    #[test]
    fn large_files_beyond_the_cap_are_bucketed() {
        let rules = Rules {
            max_large: 2,
            ..Rules::default()
        };
        let files: Vec<LockedFile> = (0..5)
            .map(|i| file(&format!("big-{i}"), 1, (100 + i) << 20))
            .collect();
        let g = group(&files, &rules);
        let large: Vec<&str> = g
            .iter()
            .filter(|g| g.kind == GroupKind::Large)
            .map(|g| g.id.as_str())
            .collect();
        assert_eq!(large, ["pkg-big-3", "pkg-big-4"]);
        assert!(g.len() <= rules.max_groups());
    }
}
