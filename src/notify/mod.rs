//! Notifications (being built).

/// `[notify]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NotifyConfig {}

impl NotifyConfig {
    /// Parses `[notify]`; errors are (field, message).
    pub fn parse(_t: &toml::Table, _base: &std::path::Path) -> Result<Self, (String, String)> {
        Ok(Self {})
    }
}
