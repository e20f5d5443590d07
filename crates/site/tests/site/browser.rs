//! The built index in headless Chromium over WebDriver: no console errors, and a screenshot
//! kept as a test artifact.
