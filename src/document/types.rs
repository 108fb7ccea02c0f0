//! The 29 types of administrative document of Decree 30/2020/NĐ-CP, with the
//! abbreviation that starts their notation (công văn and thư công have none).

#[derive(Debug, PartialEq, Eq)]
pub struct DocumentType {
    /// Stable ASCII code used in the API, e.g. "chi-thi".
    pub code: &'static str,
    /// Abbreviation in the notation, e.g. "CT" in "15/CT-UBND"; "" for none.
    pub abbreviation: &'static str,
    pub name: &'static str,
}

const fn t(code: &'static str, abbreviation: &'static str, name: &'static str) -> DocumentType {
    DocumentType {
        code,
        abbreviation,
        name,
    }
}

pub static TYPES: [DocumentType; 29] = [
    t("nghi-quyet", "NQ", "Nghị quyết"),
    t("quyet-dinh", "QĐ", "Quyết định"),
    t("chi-thi", "CT", "Chỉ thị"),
    t("quy-che", "QC", "Quy chế"),
    t("quy-dinh", "QyĐ", "Quy định"),
    t("thong-cao", "TC", "Thông cáo"),
    t("thong-bao", "TB", "Thông báo"),
    t("huong-dan", "HD", "Hướng dẫn"),
    t("chuong-trinh", "CTr", "Chương trình"),
    t("ke-hoach", "KH", "Kế hoạch"),
    t("phuong-an", "PA", "Phương án"),
    t("de-an", "ĐA", "Đề án"),
    t("du-an", "DA", "Dự án"),
    t("bao-cao", "BC", "Báo cáo"),
    t("bien-ban", "BB", "Biên bản"),
    t("to-trinh", "TTr", "Tờ trình"),
    t("hop-dong", "HĐ", "Hợp đồng"),
    t("cong-van", "", "Công văn"),
    t("cong-dien", "CĐ", "Công điện"),
    t("ban-ghi-nho", "BGN", "Bản ghi nhớ"),
    t("ban-thoa-thuan", "BTT", "Bản thỏa thuận"),
    t("giay-uy-quyen", "GUQ", "Giấy ủy quyền"),
    t("giay-moi", "GM", "Giấy mời"),
    t("giay-gioi-thieu", "GGT", "Giấy giới thiệu"),
    t("giay-nghi-phep", "GNP", "Giấy nghỉ phép"),
    t("phieu-gui", "PG", "Phiếu gửi"),
    t("phieu-chuyen", "PC", "Phiếu chuyển"),
    t("phieu-bao", "PB", "Phiếu báo"),
    t("thu-cong", "", "Thư công"),
];

/// Finds a type by code or abbreviation. Abbreviations are matched exactly:
/// "QĐ" (with Đ) is a decision, "QD" is nothing, since Decree 30 prints Đ.
pub fn find(name: &str) -> Option<&'static DocumentType> {
    TYPES
        .iter()
        .find(|t| t.code == name || (!t.abbreviation.is_empty() && t.abbreviation == name))
}

/// Finds a type as a person may type it: its code, its abbreviation
/// (exactly, since "DA" and "ĐA" are two types), or its Vietnamese name in
/// any case, with or without diacritics ("Quyết định", "quyet dinh").
pub fn find_loosely(name: &str) -> Option<&'static DocumentType> {
    find(name).or_else(|| {
        let wanted = fold(name);
        TYPES.iter().find(|t| fold(t.name) == wanted)
    })
}

/// Lower case, Vietnamese diacritics removed, runs of spaces, hyphens and
/// underscores as one space: "Quyết  định" and "quyet-dinh" fold alike.
pub fn fold(text: &str) -> String {
    const PLAIN: [(&str, char); 7] = [
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("đ", 'd'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ìíỉĩị", 'i'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ùúủũụưừứửữự", 'u'),
        ("ỳýỷỹỵ", 'y'),
    ];
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        let c = PLAIN
            .iter()
            .find(|(accented, _)| accented.contains(c))
            .map_or(c, |(_, plain)| *plain);
        if c == ' ' || c == '-' || c == '_' {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_abbreviations_are_unique() {
        let mut names: Vec<&str> = TYPES.iter().map(|t| t.code).collect();
        names.extend(
            TYPES
                .iter()
                .map(|t| t.abbreviation)
                .filter(|a| !a.is_empty()),
        );
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before);
    }

    #[test]
    fn names_are_found_with_or_without_diacritics() {
        let code = |n: &str| find_loosely(n).map(|t| t.code);
        assert_eq!(code("Quyết định"), Some("quyet-dinh"));
        assert_eq!(code("quyet dinh"), Some("quyet-dinh"));
        assert_eq!(code("QUY ĐỊNH"), Some("quy-dinh"));
        assert_eq!(code("Đề án"), Some("de-an"));
        assert_eq!(code("ĐA"), Some("de-an"));
        assert_eq!(code("DA"), Some("du-an"));
        assert_eq!(code("QD"), None);
        // No two names fold alike.
        let mut folded: Vec<String> = TYPES.iter().map(|t| fold(t.name)).collect();
        folded.sort_unstable();
        folded.dedup();
        assert_eq!(folded.len(), TYPES.len());
    }

    #[test]
    fn lookup_by_code_or_abbreviation() {
        assert_eq!(find("CT").map(|t| t.code), Some("chi-thi"));
        assert_eq!(find("cong-van").map(|t| t.abbreviation), Some(""));
        assert!(find("").is_none());
        assert!(find("QD").is_none());
    }
}
