{#- Engagement score of a customer-month: a weighted count of engagement events, each kind weighted by the effort
    it takes and what it does for the shop: site visit 1, review 3, social share 3, referral 5. -#}
{% macro engagement_score(site_visits, reviews, social_shares, referrals) -%}
    ({{ site_visits }} * 1 + {{ reviews }} * 3 + {{ social_shares }} * 3 + {{ referrals }} * 5)
{%- endmacro %}
