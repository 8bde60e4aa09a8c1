//! The end-to-end suite as one test binary: each module is one area of the
//! product, driven over HTTP (or as processes) against real servers. One
//! binary links the host once instead of once per area.

mod api;
mod billing;
mod campaigns;
mod console;
mod console_journey;
mod console_operator;
mod console_people;
mod console_policies;
mod console_reach;
mod console_tree;
mod docs_page;
mod exactly_once;
mod exports;
mod hostile_policies;
mod http_surface;
mod identity;
mod large_tree;
mod ledger;
mod lifecycle;
mod limits;
mod lists;
mod membership;
mod merges;
mod openapi;
mod operating;
mod operations;
mod policies;
mod policy_canary;
mod policy_lifecycle;
mod policy_tools;
mod processes;
mod races;
mod reach;
mod readme_commands;
mod resource_policies;
mod resources;
mod seed_flows;
mod sessions;
mod subaccounts;
mod tenants;
mod traffic;
mod trust_money;
mod validation;
mod webhooks;
