//! EC2 through `aws-sdk-ec2` (feature `fleet`): the experiment's launch template, the EC2
//! Fleet or Spot Fleet request, deleting them, the tagged fleets and instances, and the
//! spot price history. [`crate::exp::fleet`] decides when to call them.

use super::api::{CloudError, Compute, FleetApi, Instance, PricePoint, TAG, TaggedFleet, template_name};
use super::aws::{self, classify};
use crate::format::experiment::Fleet;
use aws_sdk_ec2::types::{
    AllocationStrategy, DefaultTargetCapacityType, Filter, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecification, FleetLaunchTemplateSpecificationRequest, FleetType, InstanceType, LaunchTemplateConfig,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateOverrides, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, SpotAllocationStrategy, SpotFleetRequestConfigData, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest,
};

/// An EC2 client.
pub(super) struct Ec2 {
    client: aws_sdk_ec2::Client,
    rt: tokio::runtime::Runtime,
    region: String,
}

fn err<E: std::error::Error + aws_sdk_ec2::error::ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    call: &str,
    e: aws_sdk_ec2::error::SdkError<E, R>,
) -> CloudError {
    classify("EC2", call, &e)
}

fn tag(id: &str) -> Tag {
    Tag::builder().key(TAG).value(id).build()
}

/// Whether `tags` carry experiment `id`'s tag.
fn tagged(tags: &[Tag], id: &str) -> bool {
    tags.iter().any(|t| t.key() == Some(TAG) && t.value() == Some(id))
}

fn unix(t: Option<&aws_sdk_ec2::primitives::DateTime>) -> f64 {
    t.map_or(0.0, |t| t.as_secs_f64())
}

fn missing(what: &str) -> CloudError {
    CloudError::Setup(format!("EC2 gave no {what}"))
}

impl Ec2 {
    /// A client for `region` (else the SDK's chain, else `us-east-1`).
    pub(super) fn connect(region: Option<&str>) -> Result<Ec2, CloudError> {
        let (rt, shared) = aws::connect(region)?;
        let region = shared.region().map_or_else(|| "us-east-1".to_string(), ToString::to_string);
        Ok(Ec2 { client: aws_sdk_ec2::Client::new(&shared), rt, region })
    }

    /// Whether the fleet is deleted (or cancelled) already, as EC2 describes it.
    fn fleet_gone(&self, api: FleetApi, fleet_id: &str) -> bool {
        if api == FleetApi::SpotFleet {
            let out = self.rt.block_on(self.client.describe_spot_fleet_requests().spot_fleet_request_ids(fleet_id).send());
            return out.is_ok_and(|o| {
                o.spot_fleet_request_configs()
                    .iter()
                    .all(|c| c.spot_fleet_request_state().is_some_and(|s| s.as_str().starts_with("cancelled")))
            });
        }
        let out = self.rt.block_on(self.client.describe_fleets().fleet_ids(fleet_id).send());
        out.is_ok_and(|o| o.fleets().iter().all(|f| f.fleet_state().is_some_and(|s| s.as_str().starts_with("deleted"))))
    }

    fn delete_fleet_now(&self, api: FleetApi, fleet_id: &str) -> Result<(), CloudError> {
        if api == FleetApi::SpotFleet {
            self.rt
                .block_on(self.client.cancel_spot_fleet_requests().spot_fleet_request_ids(fleet_id).terminate_instances(true).send())
                .map_err(|e| err("CancelSpotFleetRequests", e))?;
        } else {
            self.rt
                .block_on(self.client.delete_fleets().fleet_ids(fleet_id).terminate_instances(true).send())
                .map_err(|e| err("DeleteFleets", e))?;
        }
        Ok(())
    }

    /// Sends a DeleteLaunchTemplate (by id or by name): one that is gone already
    /// (`InvalidLaunchTemplateName.NotFoundException`), or was never made, is deleted.
    fn delete_launch_template(
        &self,
        request: aws_sdk_ec2::operation::delete_launch_template::builders::DeleteLaunchTemplateFluentBuilder,
    ) -> Result<(), CloudError> {
        match self.rt.block_on(request.send()) {
            Ok(_) => Ok(()),
            Err(e) => match err("DeleteLaunchTemplate", e) {
                CloudError::Service { code, .. } if code.contains("NotFound") => Ok(()),
                other => Err(other),
            },
        }
    }
}

impl Compute for Ec2 {
    fn region(&self) -> &str {
        &self.region
    }

    fn create_template(&self, id: &str, fleet: &Fleet, user_data: &str, token: &str) -> Result<String, CloudError> {
        let base = self.rt.block_on(
            self.client.describe_launch_template_versions().launch_template_name(&fleet.launch_template).versions("$Default").send(),
        );
        let base = match base {
            Ok(b) => b.launch_template_versions().first().and_then(|v| v.launch_template_data()).cloned(),
            Err(_) if fleet.ami.is_some() => None,
            Err(e) => {
                return Err(match err("DescribeLaunchTemplateVersions", e) {
                    CloudError::Service { code, message, .. } => CloudError::Setup(format!(
                        "the base launch template `{}` (key `fleet.launch_template`) was not found ({code}: {message}): create it with docker/fleet.cfn.yaml, or set `fleet.ami`",
                        fleet.launch_template
                    )),
                    other => other,
                });
            }
        };
        let image = fleet.ami.clone().or_else(|| base.as_ref().and_then(|b| b.image_id().map(str::to_string)));
        let image = image.ok_or_else(|| {
            CloudError::Setup(format!("the base launch template `{}` names no AMI: set `fleet.ami`", fleet.launch_template))
        })?;
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(image)
            .user_data(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, user_data))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(LaunchTemplateHttpTokensState::Required)
                    .http_put_response_hop_limit(2)
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    .build(),
            )
            .tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder().resource_type(ResourceType::Instance).tags(tag(id)).build(),
            )
            .tag_specifications(LaunchTemplateTagSpecificationRequest::builder().resource_type(ResourceType::Volume).tags(tag(id)).build());
        if let Some(b) = &base {
            if let Some(p) = b.iam_instance_profile() {
                data = data.iam_instance_profile(
                    LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                        .set_arn(p.arn().map(str::to_string))
                        .set_name(p.arn().is_none().then(|| p.name().map(str::to_string)).flatten())
                        .build(),
                );
            }
            data = data.set_security_group_ids(Some(b.security_group_ids().to_vec()).filter(|v| !v.is_empty()));
            data = data.set_key_name(b.key_name().map(str::to_string));
        }
        let out = self
            .rt
            .block_on(
                self.client
                    .create_launch_template()
                    .launch_template_name(template_name(id))
                    .client_token(token)
                    .version_description(format!("paddock experiment {id}"))
                    .launch_template_data(data.build())
                    .tag_specifications(TagSpecification::builder().resource_type(ResourceType::LaunchTemplate).tags(tag(id)).build())
                    .send(),
            )
            .map_err(|e| err("CreateLaunchTemplate", e))?;
        out.launch_template().and_then(|t| t.launch_template_id()).map(str::to_string).ok_or_else(|| missing("launch template id"))
    }

    fn request(&self, id: &str, fleet: &Fleet, template: &str, capacity: u32, token: &str) -> Result<String, CloudError> {
        let price = fleet.max_price.map(|p| format!("{p:.4}"));
        let subnets: Vec<Option<String>> =
            if fleet.subnets.is_empty() { vec![None] } else { fleet.subnets.iter().cloned().map(Some).collect() };
        // One pool per instance type × subnet.
        let pools: Vec<(InstanceType, Option<String>)> =
            fleet.instance_types.iter().flat_map(|t| subnets.iter().map(move |s| (InstanceType::from(t.as_str()), s.clone()))).collect();
        if fleet.api == "spot-fleet" {
            let overrides = pools
                .into_iter()
                .map(|(t, s)| LaunchTemplateOverrides::builder().instance_type(t).set_spot_price(price.clone()).set_subnet_id(s).build())
                .collect();
            let config = SpotFleetRequestConfigData::builder()
                .client_token(token)
                .allocation_strategy(AllocationStrategy::CapacityOptimized)
                .set_iam_fleet_role(fleet.spot_fleet_role.clone())
                .target_capacity(capacity as i32)
                .set_spot_price(price.clone())
                .r#type(FleetType::Maintain)
                .launch_template_configs(
                    LaunchTemplateConfig::builder()
                        .launch_template_specification(
                            FleetLaunchTemplateSpecification::builder().launch_template_id(template).version("$Latest").build(),
                        )
                        .set_overrides(Some(overrides))
                        .build(),
                )
                .tag_specifications(TagSpecification::builder().resource_type(ResourceType::SpotFleetRequest).tags(tag(id)).build())
                .build();
            let out = self
                .rt
                .block_on(self.client.request_spot_fleet().spot_fleet_request_config(config).send())
                .map_err(|e| err("RequestSpotFleet", e))?;
            return out.spot_fleet_request_id().map(str::to_string).ok_or_else(|| missing("Spot Fleet request id"));
        }
        let overrides = pools
            .into_iter()
            .map(|(t, s)| {
                FleetLaunchTemplateOverridesRequest::builder().instance_type(t).set_max_price(price.clone()).set_subnet_id(s).build()
            })
            .collect();
        let out = self
            .rt
            .block_on(
                self.client
                    .create_fleet()
                    .client_token(token)
                    .r#type(FleetType::Maintain)
                    .launch_template_configs(
                        FleetLaunchTemplateConfigRequest::builder()
                            .launch_template_specification(
                                FleetLaunchTemplateSpecificationRequest::builder().launch_template_id(template).version("$Latest").build(),
                            )
                            .set_overrides(Some(overrides))
                            .build(),
                    )
                    .target_capacity_specification(
                        TargetCapacitySpecificationRequest::builder()
                            .total_target_capacity(capacity as i32)
                            .spot_target_capacity(capacity as i32)
                            .on_demand_target_capacity(0)
                            .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                            .build(),
                    )
                    .spot_options(SpotOptionsRequest::builder().allocation_strategy(SpotAllocationStrategy::CapacityOptimized).build())
                    .replace_unhealthy_instances(true)
                    .tag_specifications(TagSpecification::builder().resource_type(ResourceType::Fleet).tags(tag(id)).build())
                    .send(),
            )
            .map_err(|e| err("CreateFleet", e))?;
        if out.fleet_id().is_none()
            && let Some(e) = out.errors().first()
        {
            return Err(CloudError::Service {
                service: "EC2",
                call: "CreateFleet".into(),
                code: e.error_code().unwrap_or("").to_string(),
                message: e.error_message().unwrap_or("").to_string(),
            });
        }
        out.fleet_id().map(str::to_string).ok_or_else(|| missing("fleet id"))
    }

    fn tagged_fleets(&self, id: &str) -> Result<Vec<TaggedFleet>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page =
                self.rt.block_on(self.client.describe_fleets().set_next_token(token).send()).map_err(|e| err("DescribeFleets", e))?;
            for f in page.fleets().iter().filter(|f| tagged(f.tags(), id)) {
                out.push(TaggedFleet {
                    api: FleetApi::Fleet,
                    id: f.fleet_id().unwrap_or_default().to_string(),
                    active: !f.fleet_state().is_some_and(|s| s.as_str().starts_with("deleted")),
                });
            }
            token = page.next_token().map(str::to_string).filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        loop {
            let page = self
                .rt
                .block_on(self.client.describe_spot_fleet_requests().set_next_token(token).send())
                .map_err(|e| err("DescribeSpotFleetRequests", e))?;
            for c in page.spot_fleet_request_configs() {
                let tags = c.tags();
                let config_tags = c.spot_fleet_request_config().map(|d| d.tag_specifications()).unwrap_or_default();
                if tagged(tags, id) || config_tags.iter().any(|s| tagged(s.tags(), id)) {
                    out.push(TaggedFleet {
                        api: FleetApi::SpotFleet,
                        id: c.spot_fleet_request_id().unwrap_or_default().to_string(),
                        active: !c.spot_fleet_request_state().is_some_and(|s| s.as_str().starts_with("cancelled")),
                    });
                }
            }
            token = page.next_token().map(str::to_string).filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    fn delete_fleet(&self, api: FleetApi, fleet_id: &str) -> Result<(), CloudError> {
        if self.fleet_gone(api, fleet_id) {
            return Ok(());
        }
        let deleted = self.delete_fleet_now(api, fleet_id);
        if deleted.is_err() && self.fleet_gone(api, fleet_id) {
            return Ok(());
        }
        deleted
    }

    fn instances(&self, id: &str) -> Result<Vec<Instance>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.client
                        .describe_instances()
                        .filters(Filter::builder().name(format!("tag:{TAG}")).values(id).build())
                        .set_next_token(token)
                        .send(),
                )
                .map_err(|e| err("DescribeInstances", e))?;
            for r in page.reservations() {
                for i in r.instances() {
                    out.push(Instance {
                        id: i.instance_id().unwrap_or_default().to_string(),
                        instance_type: i.instance_type().map_or_else(String::new, |t| t.as_str().to_string()),
                        zone: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
                        state: i.state().and_then(|s| s.name()).map_or_else(String::new, |n| n.as_str().to_string()),
                        launched: unix(i.launch_time()),
                    });
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    fn terminate(&self, ids: &[String]) -> Result<(), CloudError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.rt
            .block_on(self.client.terminate_instances().set_instance_ids(Some(ids.to_vec())).send())
            .map_err(|e| err("TerminateInstances", e))?;
        Ok(())
    }

    fn delete_template_named(&self, name: &str) -> Result<(), CloudError> {
        self.delete_launch_template(self.client.delete_launch_template().launch_template_name(name))
    }

    fn delete_template(&self, id: &str) -> Result<(), CloudError> {
        self.delete_launch_template(self.client.delete_launch_template().launch_template_id(id))
    }

    fn spot_prices(&self, instance_type: &str, zone: &str, from: f64, to: f64) -> Result<Vec<PricePoint>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.client
                        .describe_spot_price_history()
                        .instance_types(InstanceType::from(instance_type))
                        .availability_zone(zone)
                        .product_descriptions("Linux/UNIX")
                        // The price in force at `from` was set before it.
                        .start_time(aws_sdk_ec2::primitives::DateTime::from_secs((from - 86_400.0).max(0.0) as i64))
                        .end_time(aws_sdk_ec2::primitives::DateTime::from_secs(to.ceil() as i64))
                        .set_next_token(token)
                        .send(),
                )
                .map_err(|e| err("DescribeSpotPriceHistory", e))?;
            for p in page.spot_price_history() {
                let Some(price) = p.spot_price().and_then(|s| s.parse::<f64>().ok()) else { continue };
                out.push(PricePoint {
                    instance_type: instance_type.to_string(),
                    zone: p.availability_zone().unwrap_or(zone).to_string(),
                    from: unix(p.timestamp()),
                    price,
                });
            }
            token = page.next_token().map(str::to_string).filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
